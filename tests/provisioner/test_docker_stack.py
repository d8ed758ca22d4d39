"""`medcell up` / `down` and the demo on the real engine, with the real gateway in front."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from devsupport import eventually as wait_until
from devsupport import localhost
from provisioner.cli.commands import Runtime
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(installation):
    runtime = Runtime(Config.from_env(installation), DockerBackend())
    runtime.stack.up()
    return runtime


def get(config: Config, slug: str, path: str) -> int:
    """Status of a GET at the facility's own origin (the URL `create` prints), through the
    gateway, trusting only its own certificate."""
    url = config.facility_url(slug) + path.lstrip("/")
    with localhost.session(verify=str(config.home / "gateway" / "tls" / "cert.pem")) as http:
        try:
            return http.get(url, timeout=5).status_code
        except requests.ConnectionError:
            return 0


def eventually(config: Config, slug: str, path: str, status: int, seconds: float = 5) -> None:
    seen = wait_until(lambda: get(config, slug, path), lambda got: got == status, seconds)
    assert seen == status, f"{slug} {path}: {seen}, wanted {status}"


def test_gateway_is_hardened_and_publishes_only_its_ports(stack, docker_client):
    config = stack.facilities.config
    attrs = docker_client.api.inspect_container(config.gateway_container)
    host = attrs["HostConfig"]
    assert attrs["Config"]["Labels"]["medcell.role"] == "gateway"
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert attrs["Config"]["User"] in ("10001:10001", f"{os.getuid()}:{os.getgid()}")
    assert set(host["PortBindings"]) == {"8443/tcp", "8080/tcp"}
    assert host["PortBindings"]["8443/tcp"][0]["HostPort"] == str(config.gateway_port)
    mounts = {m["Destination"]: m["RW"] for m in attrs["Mounts"]}
    assert mounts == {
        "/etc/medcell-gateway": False,
        "/run/medcell/facilities": False,
        "/run/medcell/supervisor": False,
        "/run/medcell/gateway": True,
    }
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert "docker.sock" not in json.dumps(attrs)


def test_supervisor_holds_the_docker_socket_and_nothing_else(stack, docker_client):
    config = stack.facilities.config
    attrs = docker_client.api.inspect_container(config.supervisor_container)
    host = attrs["HostConfig"]
    assert attrs["State"]["Running"] is True
    assert attrs["Config"]["Labels"]["medcell.role"] == "supervisor"
    # Its own network, only to publish its metrics on the configured address (here loopback).
    assert host["NetworkMode"] == f"{config.prefix}-metrics"
    port = config.metrics_bind[1]
    assert host["PortBindings"] == {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and host["Privileged"] is False
    assert host["Memory"] == 128 * 1024 * 1024
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}
    assert mounts == {
        "/var/run/docker.sock": ("/var/run/docker.sock", True),
        "/medcell": (str(config.home), True),
    }
    # Its wake API comes up (just after `up` returns), for the gateway's activator.
    deadline = time.monotonic() + 30
    while not config.supervisor_socket.is_socket() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert config.supervisor_socket.is_socket(), docker_client.containers.get(
        config.supervisor_container
    ).logs()[-2000:]


def test_facility_is_reachable_through_the_gateway_and_follows_its_state(stack, docker_client):
    facilities, config = stack.facilities, stack.facilities.config
    facilities.create("gw")
    gateway = docker_client.api.inspect_container(config.gateway_container)
    assert set(gateway["NetworkSettings"]["Networks"]) == {config.edge_network}
    eventually(config, "gw", "/healthz", 200)
    facilities.stop("gw")
    eventually(config, "gw", "/healthz", 503)
    facilities.start("gw")
    eventually(config, "gw", "/healthz", 200)
    facilities.delete("gw")
    eventually(config, "gw", "/healthz", 404)


def test_up_repairs_a_removed_gateway_and_down_keeps_facilities(stack, docker_client):
    facilities, config = stack.facilities, stack.facilities.config
    facilities.create("keep")
    docker_client.containers.get(config.gateway_container).remove(force=True)
    result = stack.stack.up()
    assert f"created {config.gateway_container}" in result["repaired"]
    eventually(config, "keep", "/healthz", 200)
    assert stack.stack.down()["removed"] is True
    assert [f["status"] for f in facilities.list() if f["slug"] == "keep"] == ["running"]
    assert docker_client.containers.get(config.supervisor_container).status == "running"
    stack.stack.up()
    eventually(config, "keep", "/healthz", 200)


def test_demo_prints_the_same_login_every_time(stack, installation):
    runs = [
        subprocess.run(
            [sys.executable, "-m", "provisioner.cli.demo"],
            env=installation,
            capture_output=True,
            text=True,
            timeout=180,
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert stack.facilities.config.facility_url("demo") in runs[0].stdout
    assert "admin / " in runs[0].stdout
    credentials = stack.facilities.config.home / "demo-credentials.json"
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"

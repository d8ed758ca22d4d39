"""Cluster mode's gateway and supervisor: global services rendered from the container specs.

A fake Swarm manager (tests/provisioner/fakeswarm.py) records every service call; the real
engine's side is in tests/cluster/test_stack_everywhere.py.
"""

import dataclasses
import json
import re

import pytest

from provisioner.cli.commands import Runtime
from provisioner.host import specs, stack_services
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import HealthTimeout, InvalidArgument
from provisioner.host.stack_services import StackServices
from tests.provisioner.conftest import Invoker
from tests.provisioner.fakeswarm import FakeSwarm

GATEWAY_IMAGE_ID = "sha256:gw"
SUPERVISOR_IMAGE_ID = "sha256:sv"
TLS = {"ca.crt": "CA CERT", "node.crt": "NODE CERT", "node.key": "NODE KEY"}


@pytest.fixture
def swarm() -> FakeSwarm:
    fake = FakeSwarm()
    fake.image_ids = {
        "medcell-gateway:latest": GATEWAY_IMAGE_ID,
        "medcell-supervisor:latest": SUPERVISOR_IMAGE_ID,
    }
    return fake


@pytest.fixture
def cluster_home(config):
    """What `cluster init` leaves on the first manager: the CA key beside the node's files."""
    directory = config.home / "cluster"
    directory.mkdir(parents=True, mode=0o700)
    for name, text in {**TLS, "ca.key": "CA PRIVATE KEY"}.items():
        (directory / name).write_text(text)
    (directory / "outgoing").mkdir()
    (directory / "outgoing" / "join-1.json").write_text("{}")
    return directory


@pytest.fixture
def cluster_medcell(config, swarm, clock, fake_sockets) -> Invoker:
    options = {
        "identity": lambda: ("10001:10001", None),
        "supervisor": lambda: ("0:0", 998, "/var/run/docker.sock"),
    }
    runtime = Runtime(config, DockerBackend(swarm), stack_options=options)
    runtime.facilities.sleep = clock.sleep
    runtime.facilities.clock = clock
    return Invoker(runtime)


def created(swarm: FakeSwarm, name: str) -> dict:
    calls = [c for kind, c in swarm.service_calls if kind == "create" and c["name"] == name]
    assert len(calls) == 1
    return calls[0]


def fingerprint(call: dict) -> str:
    value = call["labels"]["medcell.config"]
    assert re.fullmatch(r"[0-9a-f]{16}", value)
    assert call["task_template"]["ContainerSpec"]["Labels"]["medcell.config"] == value
    return value


def without_fingerprint(labels: dict) -> dict:
    return {k: v for k, v in labels.items() if k != "medcell.config"}


def test_gateway_service_is_the_gateway_container_spec_on_every_node(config):
    spec = stack_services.gateway_spec(config, "10001:10001", GATEWAY_IMAGE_ID, "net-edge")
    call = stack_services.render(spec)
    run = str(config.home / "run")
    labels = {"medcell.instance": "medcell", "medcell.role": "gateway"}
    assert without_fingerprint(call["labels"]) == labels
    fingerprint(call)
    container = call["task_template"]["ContainerSpec"]
    assert without_fingerprint(container.pop("Labels")) == labels
    assert container == {
        "Image": "medcell-gateway:latest",
        "User": "10001:10001",
        "Env": [
            "MEDCELL_DOMAIN=localhost",
            # Its copy of the node's TLS files: it forwards to and takes from the other nodes.
            "MEDCELL_GATEWAY_CLUSTER_TLS=/etc/medcell-gateway/cluster",
            "MEDCELL_GATEWAY_CONFIG=/etc/medcell-gateway",
            "MEDCELL_GATEWAY_PORT=8443",
            "MEDCELL_WAKE_BUDGET=20",
            "MEDCELL_WAKE_BUDGET_WINDOW=600s",
        ],
        "Mounts": [
            {
                "Type": "bind",
                "Source": str(config.home / "gateway"),
                "Target": "/etc/medcell-gateway",
                "ReadOnly": True,
            },
            {
                "Type": "bind",
                "Source": f"{run}/facilities",
                "Target": "/run/medcell/facilities",
                "ReadOnly": True,
            },
            {
                "Type": "bind",
                "Source": f"{run}/gateway",
                "Target": "/run/medcell/gateway",
                "ReadOnly": False,
            },
            {
                "Type": "bind",
                "Source": f"{run}/supervisor",
                "Target": "/run/medcell/supervisor",
                "ReadOnly": True,
            },
            {
                "Type": "tmpfs",
                "Target": "/tmp",
                "TmpfsOptions": {"SizeBytes": 2**26, "Mode": 0o1777},
            },
        ],
        "ReadOnly": True,
        "CapabilityDrop": ["ALL"],
        "StopGracePeriod": 10 * 10**9,
    }
    assert call["task_template"]["Resources"] == {
        "Limits": {"MemoryBytes": 256 * 2**20, "NanoCPUs": 10**9, "Pids": 256}
    }
    assert call["task_template"]["RestartPolicy"] == {
        "Condition": "any",
        "Delay": 10**9,
        "MaxAttempts": 0,
    }
    assert call["task_template"]["Networks"] == [{"Target": "net-edge"}]
    assert set(call["task_template"]) == {"ContainerSpec", "Resources", "RestartPolicy", "Networks"}
    assert call["name"] == "medcell-gateway"
    assert call["mode"] == {"Global": {}}
    assert call["update_config"] == {
        "Parallelism": 1,
        "Order": "stop-first",
        "FailureAction": "pause",
    }
    # Every node publishes its own task's ports (no routing mesh), the peer port among them.
    assert call["endpoint_spec"] == {
        "Mode": "dnsrr",
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 8443, "PublishedPort": 8443, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 8444, "PublishedPort": 8444, "PublishMode": "host"},
        ],
    }
    assert set(call) == {
        "name",
        "labels",
        "task_template",
        "mode",
        "update_config",
        "endpoint_spec",
    }


def test_gateway_service_publishes_the_operators_ports(config):
    config = dataclasses.replace(config, gateway_port=443, gateway_http_port=80)
    call = stack_services.render(stack_services.gateway_spec(config, "1:1", None, "n"))
    published = {p["TargetPort"]: p["PublishedPort"] for p in call["endpoint_spec"]["Ports"]}
    assert published == {8443: 443, 8080: 80, 8444: 8444}
    assert "MEDCELL_GATEWAY_PORT=443" in call["task_template"]["ContainerSpec"]["Env"]


def test_supervisor_service_keeps_the_socket_and_sees_only_the_nodes_tls_files(config):
    spec = stack_services.supervisor_spec(
        config, "0:0", 998, "/var/run/docker.sock", SUPERVISOR_IMAGE_ID
    )
    call = stack_services.render(spec, masks=stack_services.supervisor_masks())
    labels = {"medcell.instance": "medcell", "medcell.role": "supervisor"}
    assert without_fingerprint(call["labels"]) == labels
    fingerprint(call)
    container = call["task_template"]["ContainerSpec"]
    assert without_fingerprint(container.pop("Labels")) == labels
    tls = config.home / "cluster"
    assert container == {
        "Image": "medcell-supervisor:latest",
        "User": "0:0",
        "Env": [
            "MEDCELL_DOCKER_PREFIX=medcell",
            "MEDCELL_DOMAIN=localhost",
            "MEDCELL_GATEWAY_PORT=8443",
            "MEDCELL_HEALTH_TIMEOUT=90",
            "MEDCELL_HOME=/medcell",
            f"MEDCELL_HOST_HOME={config.home}",
            "MEDCELL_IDLE_TIMEOUT=900s",
            "MEDCELL_IMAGE_TAG=latest",
            "MEDCELL_MAX_AWAKE=64",
            # On its node's own network: /metrics where the operator said, loopback by default.
            "MEDCELL_METRICS_BIND=127.0.0.1:9464",
            "MEDCELL_TIMEZONE=Europe/Berlin",
        ],
        "Mounts": [
            {"Type": "bind", "Source": str(config.home), "Target": "/medcell", "ReadOnly": False},
            # The node's cluster folder (with the CA key on the first manager) is hidden ...
            {
                "Type": "tmpfs",
                "Target": "/medcell/cluster",
                "TmpfsOptions": {"SizeBytes": 65536, "Mode": 0o755},
            },
            # ... and only the node's certificate, key and the CA certificate are mounted.
            *(
                {
                    "Type": "bind",
                    "Source": str(tls / name),
                    "Target": f"/run/medcell/cluster/{name}",
                    "ReadOnly": True,
                }
                for name in ("ca.crt", "node.crt", "node.key")
            ),
            {
                "Type": "tmpfs",
                "Target": "/tmp",
                "TmpfsOptions": {"SizeBytes": 2**26, "Mode": 0o1777},
            },
            {
                "Type": "bind",
                "Source": "/var/run/docker.sock",
                "Target": "/var/run/docker.sock",
                "ReadOnly": False,
            },
        ],
        "ReadOnly": True,
        "CapabilityDrop": ["ALL"],
        "Groups": ["998"],
        "StopGracePeriod": 10 * 10**9,
    }
    assert call["task_template"]["Resources"] == {
        "Limits": {"MemoryBytes": 128 * 2**20, "NanoCPUs": 10**9, "Pids": 256}
    }
    # The node's own network stack: its node API and /metrics bind the node's ports themselves
    # (a published port would bind every address, so /metrics could not stay on loopback).
    assert call["task_template"]["Networks"] == [{"Target": "host"}]
    assert call["mode"] == {"Global": {}}
    assert call["endpoint_spec"] == {"Mode": "dnsrr", "Ports": []}
    assert not any("ca.key" in str(m) for m in container["Mounts"])


def test_a_service_renders_a_one_off_command_and_no_health_check(config):
    """Fields the stack's two specs do not use render too (volumes, command, health)."""
    spec = specs.shred_spec(config, "demo")
    container = stack_services.render(spec)["task_template"]["ContainerSpec"]
    assert container["Args"] == ["python", "-m", "services.facility", "shred-keys"]
    assert {
        "Type": "volume",
        "Source": "medcell-demo-data",
        "Target": "/data",
        "ReadOnly": False,
    } in (container["Mounts"])
    spec = dataclasses.replace(spec, healthcheck=False)
    container = stack_services.render(spec)["task_template"]["ContainerSpec"]
    assert container["Healthcheck"] == {"Test": ["NONE"]}
    assert "Networks" not in stack_services.render(spec)["task_template"]


def test_fingerprint_follows_settings_and_image(config):
    def rendered(cfg, image_id):
        return fingerprint(
            stack_services.render(stack_services.gateway_spec(cfg, "1:1", image_id, "n"))
        )

    first = rendered(config, "sha256:a")
    assert rendered(config, "sha256:a") == first
    assert rendered(config, "sha256:b") != first
    assert rendered(dataclasses.replace(config, gateway_port=9443), "sha256:a") != first


def test_gateway_bind_cannot_be_kept_in_cluster_mode(config):
    config = dataclasses.replace(config, gateway_bind="127.0.0.1")
    with pytest.raises(InvalidArgument, match="MEDCELL_GATEWAY_BIND"):
        stack_services.gateway_spec(config, "1:1", None, "n")


@pytest.mark.process
def test_up_in_cluster_mode_runs_global_services_and_no_stack_containers(
    cluster_medcell, swarm, config, cluster_home
):
    out = cluster_medcell.json("up")
    assert (out["status"], out["supervisor"]) == ("running", "running")
    assert set(swarm.services_by_name) == {"medcell-gateway", "medcell-supervisor"}
    assert "medcell-gateway" not in swarm.containers_by_name
    assert "medcell-supervisor" not in swarm.containers_by_name
    assert "created service medcell-gateway" in out["repaired"]
    gateway, supervisor = created(swarm, "medcell-gateway"), created(swarm, "medcell-supervisor")
    # Exactly the rendering of the specs, over the swarm-scoped networks it made.
    edge = swarm.networks_by_name["medcell-cluster-edge"]
    assert edge.scope == "swarm" and not edge.internal
    assert "medcell-cluster-node" not in swarm.networks_by_name
    assert gateway == stack_services.render(
        stack_services.gateway_spec(config, "10001:10001", GATEWAY_IMAGE_ID, edge.id)
    )
    assert supervisor == stack_services.render(
        stack_services.supervisor_spec(
            config,
            "0:0",
            998,
            "/var/run/docker.sock",
            SUPERVISOR_IMAGE_ID,
        ),
        masks=("/medcell/cluster",),
    )
    # The gateway's own copy of the node's TLS files, in its configuration folder: no CA key.
    copy = config.home / "gateway" / "cluster"
    assert sorted(p.name for p in copy.iterdir()) == ["ca.crt", "node.crt", "node.key"]
    assert {p.name: p.read_text() for p in copy.iterdir()} == TLS
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in copy.iterdir())
    assert copy.stat().st_mode & 0o777 == 0o700


@pytest.mark.process
def test_up_removes_the_supervisors_network_of_before(cluster_medcell, swarm, cluster_home):
    # An installation whose supervisor service was on a network of its own, before it ran on its
    # node's host network: `up` moves it and removes the network nothing uses any more.
    ipam = {"Config": [{"Subnet": "10.99.0.0/28"}]}
    swarm.networks.create("medcell-cluster-node", driver="bridge", ipam=ipam, scope="swarm")
    out = cluster_medcell.json("up")
    assert "removed network medcell-cluster-node" in out["repaired"]
    assert "medcell-cluster-node" not in swarm.networks_by_name
    supervisor = created(swarm, "medcell-supervisor")
    assert supervisor["task_template"]["Networks"] == [{"Target": "host"}]
    assert "removed network medcell-cluster-node" not in cluster_medcell.json("up")["repaired"]


@pytest.mark.process
def test_up_again_keeps_the_services_and_updates_them_for_a_new_image(
    cluster_medcell, swarm, cluster_home
):
    cluster_medcell.json("up")
    calls = len(swarm.service_calls)
    assert cluster_medcell.json("up")["repaired"] == []
    assert len(swarm.service_calls) == calls
    swarm.image_ids["medcell-gateway:latest"] = "sha256:rebuilt"
    out = cluster_medcell.json("up")
    assert out["repaired"] == ["updated service medcell-gateway for new settings or image"]
    kind, call = swarm.service_calls[-1]
    assert (kind, call["name"]) == ("update", "medcell-gateway")
    assert call["mode"] == {"Global": {}}


@pytest.mark.process
def test_up_in_cluster_mode_replaces_the_single_host_gateway_and_supervisor(
    cluster_medcell, swarm, config, cluster_home
):
    (config.home / "cluster" / "node.crt").rename(config.home / "node.crt.aside")
    cluster_medcell.json("up")  # no cluster files yet: single-host, containers
    assert {"medcell-gateway", "medcell-supervisor"} <= set(swarm.containers_by_name)
    assert swarm.services_by_name == {}
    (config.home / "node.crt.aside").rename(config.home / "cluster" / "node.crt")
    out = cluster_medcell.json("up")
    assert "medcell-gateway" not in swarm.containers_by_name
    assert "medcell-supervisor" not in swarm.containers_by_name
    assert "medcell-edge" not in swarm.networks_by_name
    assert "medcell-metrics" not in swarm.networks_by_name
    assert "removed the single-host container medcell-gateway" in out["repaired"]
    assert set(swarm.services_by_name) == {"medcell-gateway", "medcell-supervisor"}


@pytest.mark.process
def test_up_refuses_gateway_bind_in_cluster_mode_before_changing_anything(
    cluster_medcell, swarm, config, cluster_home
):
    (config.home / "cluster" / "node.crt").rename(config.home / "node.crt.aside")
    cluster_medcell.json("up")
    (config.home / "node.crt.aside").rename(config.home / "cluster" / "node.crt")
    runtime = Runtime(
        dataclasses.replace(config, gateway_bind="127.0.0.1"),
        DockerBackend(swarm),
        stack_options={
            "identity": lambda: ("10001:10001", None),
            "supervisor": lambda: ("0:0", 998, "/var/run/docker.sock"),
        },
    )
    result = Invoker(runtime)("up")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: MEDCELL_GATEWAY_BIND cannot be kept in cluster mode")
    assert {"medcell-gateway", "medcell-supervisor"} <= set(swarm.containers_by_name)
    assert swarm.services_by_name == {}


@pytest.mark.process
def test_an_engine_outside_a_swarm_stays_single_host(cluster_medcell, swarm, cluster_home):
    swarm.swarm_state = "inactive"
    assert cluster_medcell.json("up")["status"] == "running"
    assert "medcell-gateway" in swarm.containers_by_name
    assert swarm.services_by_name == {}


@pytest.mark.process
def test_a_worker_is_told_to_use_a_manager(cluster_medcell, swarm, cluster_home):
    swarm.manager = False
    result = cluster_medcell("up")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: this host is a worker of the cluster")
    assert swarm.services_by_name == {} and swarm.containers_by_name == {}


@pytest.mark.process
def test_status_names_the_node_of_every_stack_task(cluster_medcell, swarm, cluster_home):
    cluster_medcell.json("up")
    swarm.task_state["node3"] = "failed"
    out = cluster_medcell.json("status")
    assert out["gateway_nodes"] == {"node1": "running", "node2": "running", "node3": "failed"}
    assert out["supervisor_nodes"] == out["gateway_nodes"]
    assert (out["gateway"], out["supervisor"]) == ("unhealthy", "unhealthy")
    text = cluster_medcell("status").output
    assert "gateway:    unhealthy (node1 running, node2 running, node3 failed)" in text


@pytest.mark.process
def test_down_removes_the_gateway_service_and_keeps_the_supervisors(
    cluster_medcell, swarm, cluster_home
):
    cluster_medcell.json("up")
    assert cluster_medcell.json("down") == {"gateway": "medcell-gateway", "removed": True}
    assert set(swarm.services_by_name) == {"medcell-supervisor"}
    assert "medcell-cluster-edge" not in swarm.networks_by_name
    status = cluster_medcell.json("status")
    assert (status["gateway"], status["gateway_nodes"]) == ("stopped", {})
    assert status["supervisor"] == "running"
    assert cluster_medcell.json("down")["removed"] is False


def test_waiting_names_each_node_whose_task_does_not_run(swarm, clock):
    services = StackServices(lambda: swarm)
    swarm.api.create_service({"ContainerSpec": {"Image": "x"}}, name="medcell-gateway")
    swarm.task_state.update({"node2": "rejected", "node3": "starting"})
    with pytest.raises(HealthTimeout) as error:
        services.wait_running("medcell-gateway", 10, sleep=clock.sleep, clock=clock)
    assert str(error.value) == (
        "medcell-gateway is not running on every node after 10 s: node2 (rejected), "
        "node3 (starting)"
    )
    # A task still waiting for its first health check counts once its node's gateway answers.
    asked = []
    swarm.task_state["node2"] = "running"
    services.wait_running(
        "medcell-gateway", 10, answers=lambda a: asked.append(a) or True, sleep=clock.sleep
    )
    assert asked == ["10.0.0.3"]


def test_a_down_node_is_not_waited_for(swarm, clock):
    services = StackServices(lambda: swarm)
    swarm.api.create_service({"ContainerSpec": {"Image": "x"}}, name="medcell-supervisor")
    swarm.nodes_by_name["node2"].attrs["Status"]["State"] = "down"
    tasks = services.wait_running("medcell-supervisor", 10, sleep=clock.sleep, clock=clock)
    assert [t.node for t in tasks] == ["node1", "node3"]
    assert json.dumps(services.ready_nodes()) == '{"node1": "10.0.0.1", "node3": "10.0.0.3"}'


@pytest.mark.process
def test_up_in_cluster_mode_leaves_a_facility_service_to_swarm(
    cluster_medcell, swarm, config, cluster_home
):
    # A facility service pinned to node1: its task's container here is named by Swarm and
    # carries the facility labels; its volumes and state file are this node's.
    swarm.services_by_name["medcell-pinned"] = {
        "ID": "s-pinned",
        "Version": {"Index": 1},
        "Spec": {
            "Name": "medcell-pinned",
            "Labels": config.labels(facility="pinned", role="facility"),
            "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {"Placement": {"Constraints": ["node.labels.medcell.node==node1"]}},
        },
    }
    task = swarm.containers.create(
        config.facility_image,
        name="medcell-pinned.1.x7f3",
        labels=config.labels(facility="pinned", role="facility"),
    )
    task.start()
    for volume, role in (("medcell-pinned-data", "data"), ("medcell-pinned-keys", "keys")):
        swarm.volumes.create(volume, labels=config.labels(facility="pinned", role=role))
    out = cluster_medcell.json("up")
    assert not any("pinned" in line for line in out["repaired"])
    assert "medcell-pinned" not in swarm.containers_by_name
    routes = json.loads((config.home / "gateway" / "routes.json").read_text())
    assert routes["facilities"]["pinned"] == {"state": "running"}

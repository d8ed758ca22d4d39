"""`medcell up --refresh` on the real engine: new Debian packages under every image, and a running
facility moved onto them. Slow (the bases are built again): the one Docker test of the refresh."""

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime

import docker
import pytest
from packaging.utils import canonicalize_name

from devsupport import free_port, remove_installation
from tests.deploy.test_locks import parse_lock

pytestmark = pytest.mark.docker

IMAGES = ("facility", "gateway", "supervisor")


def medcell(env: dict, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture
def client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture
def installation(client, tmp_path):
    """A throw-away installation on images of its own tag, copies of those `make images` built."""
    tag, prefix = f"refresh{secrets.token_hex(3)}", f"mctest{secrets.token_hex(3)}"
    for name in IMAGES:
        try:
            client.images.get(f"medcell-{name}:latest").tag(f"medcell-{name}", tag)
        except docker.errors.ImageNotFound:
            pytest.fail("images missing; run `make images` first")
    env = {
        **os.environ,
        "MEDCELL_HOME": str(tmp_path / "medcell-home"),
        "MEDCELL_DOCKER_PREFIX": prefix,
        "MEDCELL_IMAGE_TAG": tag,
        "MEDCELL_GATEWAY_PORT": str(free_port()),
        "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
        "MEDCELL_GATEWAY_BIND": "127.0.0.1",
        "MEDCELL_METRICS_BIND": f"127.0.0.1:{free_port()}",
    }
    try:
        yield env
    finally:
        remove_installation(client, prefix)
        for name in IMAGES:
            try:
                client.images.remove(f"medcell-{name}:{tag}")
            except docker.errors.APIError:
                pass


def test_refresh_rebuilds_every_image_on_todays_packages_and_upgrades_the_facility(
    client, installation
):
    env, tag, prefix = (
        installation,
        installation["MEDCELL_IMAGE_TAG"],
        installation["MEDCELL_DOCKER_PREFIX"],
    )
    medcell(env, "up")
    medcell(env, "facility", "create", "patched", "--idle", "never")
    container = f"{prefix}-patched"
    before = {name: client.images.get(f"medcell-{name}:{tag}").id for name in IMAGES}
    old_container = client.containers.get(container).id
    started = datetime.fromtimestamp(time.time() - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    out = medcell(env, "up", "--refresh")

    for name in IMAGES:
        image = client.images.get(f"medcell-{name}:{tag}")
        assert image.id != before[name]
        # The Debian packages under it were fetched during this refresh.
        assert image.labels["medcell.base.built"] >= started
        assert out["refreshed"][f"medcell-{name}:{tag}"] == {
            "id": image.id,
            "base_built": image.labels["medcell.base.built"],
        }
    assert f"upgraded {container}" in out["repaired"]
    upgraded = client.containers.get(container)
    assert (
        upgraded.id != old_container
        and upgraded.image.id == out["refreshed"][f"medcell-facility:{tag}"]["id"]
    )
    assert medcell(env, "facility", "show", "patched")["status"] == "running"
    for name in ("gateway", "supervisor"):
        running = client.containers.get(f"{prefix}-{name}")
        assert running.image.id == out["refreshed"][f"medcell-{name}:{tag}"]["id"]
        assert running.status == "running"
    assert medcell(env, "status")["base_built"] >= started
    # What pip installed in the rebuilt image is exactly its lock.
    frozen = client.containers.run(
        upgraded.image.id, ["pip", "list", "--format=freeze"], remove=True, network_mode="none"
    ).decode()
    installed = {canonicalize_name(n): v for n, v in (line.split("==") for line in frozen.split())}
    locked = {name: str(version) for name, (version, _) in parse_lock("facility").items()}
    assert installed == locked

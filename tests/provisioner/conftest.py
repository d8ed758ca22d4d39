"""Fixtures: a fake engine, a temporary MEDCELL_HOME, and a CLI runner wired to both."""

import json
import os
import secrets

import pytest
from click.testing import CliRunner

from devsupport import free_port, remove_installation
from provisioner.cli.commands import Runtime, cli
from provisioner.cli.facilities import Facilities
from provisioner.host import facility_http
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import FacilityUnreachable
from provisioner.host.facility_http import FacilityStatus
from tests.clock import FakeClock
from tests.provisioner.fakedocker import FakeDocker


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker()


@pytest.fixture
def config(tmp_path) -> Config:
    # Facility sockets in these tests belong to this test's own user, not to uid 10001.
    return Config(home=tmp_path / "medcell-home", facility_uid=os.getuid())


@pytest.fixture
def builds() -> list[str]:
    """Records image builds that `medcell up` asked for."""
    return []


@pytest.fixture
def clock() -> FakeClock:
    """Time that passes only when the code under test sleeps: timeouts without waiting."""
    return FakeClock()


@pytest.fixture
def fake_sockets(monkeypatch, fake, clock):
    """Facility sockets answer from the fake engine's state (unit tests have no real sockets)."""

    def healthy(config, slug, timeout=1.0):
        return fake.answers_on_socket(config.facility(slug).container)

    def status(config, slug, timeout=2.0, now=None):
        if not fake.answers_on_socket(config.facility(slug).container):
            raise FacilityUnreachable(f"facility {slug} does not answer on its socket")
        return fake.socket_status.get(slug, FacilityStatus(0, 0, 0.0, False, None))

    monkeypatch.setattr(facility_http, "healthy", healthy)
    monkeypatch.setattr(facility_http, "status", status)


@pytest.fixture
def runtime(config, fake, builds, clock, fake_sockets) -> Runtime:
    def build(progress):
        builds.append("build")
        fake.images_present |= {config.facility_image, config.gateway_image}
        fake.images_present.add(config.supervisor_image)

    options = {
        "build": build,
        "identity": lambda: ("10001:10001", None),
        "supervisor": lambda: ("1000:1000", 998, "/var/run/docker.sock"),
    }
    runtime = Runtime(config, DockerBackend(fake), stack_options=options)
    runtime.facilities.sleep = clock.sleep
    runtime.facilities.clock = clock
    return runtime


class Invoker:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def __call__(self, *args: str):
        return CliRunner().invoke(cli, list(args), obj=self.runtime)

    def json(self, *args: str):
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def medcell(runtime) -> Invoker:
    """Run `medcell ARGS...` against the fake engine: medcell("facility", "list")."""
    return Invoker(runtime)


# Integration fixtures (tests marked `docker`): a private installation on the real engine.


@pytest.fixture(scope="module")
def docker_client():
    import docker

    client = docker.from_env()
    config = Config.from_env()
    missing = []
    for image in (config.facility_image, config.gateway_image):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}; run `make images` first")
    return client


@pytest.fixture(scope="module")
def installation(docker_client, tmp_path_factory):
    """Environment of a throw-away installation: own prefix, MEDCELL_HOME and ports."""
    prefix = f"mctest{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "MEDCELL_HOME": str(tmp_path_factory.mktemp("medcell-home")),
        "MEDCELL_DOCKER_PREFIX": prefix,
        "MEDCELL_GATEWAY_PORT": str(free_port()),
        "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
        "MEDCELL_GATEWAY_BIND": "127.0.0.1",
        "MEDCELL_METRICS_BIND": f"127.0.0.1:{free_port()}",
    }
    try:
        yield env
    finally:
        remove_installation(docker_client, prefix)


@pytest.fixture(scope="module")
def live(installation) -> Facilities:
    """The provisioner's library against the real engine, inside the throw-away installation."""
    return Facilities(Config.from_env(installation), DockerBackend(), progress=print)

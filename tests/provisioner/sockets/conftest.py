"""Fixtures over real facility sockets (fakes.py), shared by the lifecycle and supervisor tests."""

import os
import shutil

import pytest

from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.supervisor.service import Supervisor
from tests.clock import FakeClock
from tests.provisioner.sockets.fakes import Engine, FakeGateway, short_home


@pytest.fixture(autouse=True)
def fake_sockets():
    """These tests talk to real facility sockets: no stand-in for them (see conftest)."""


@pytest.fixture
def config():
    home = short_home()
    # Facility processes run here as this test's own user, not in containers as uid 10001.
    yield Config(home=home / "home", idle_timeout=60, health_timeout=3.0, facility_uid=os.getuid())
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def engine(config):
    engine = Engine(config)
    engine.add_gateway()
    yield engine
    engine.shutdown()


@pytest.fixture
def gateway(config):
    gateway = FakeGateway(config)
    yield gateway
    gateway.stop()


@pytest.fixture
def backend(engine) -> DockerBackend:
    return DockerBackend(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(config, engine, clock, gateway):
    """Supervisors over the fake engine and the test's clock; closed at the end."""
    made: list[Supervisor] = []

    def make(**options) -> Supervisor:
        supervisor = Supervisor(config, DockerBackend(engine), clock=clock, **options)
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        supervisor.close()

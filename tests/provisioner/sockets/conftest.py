"""Fixtures over real facility sockets (fakes.py), shared by the lifecycle and supervisor tests."""

import shutil

import pytest

from provisioner.config import Config
from provisioner.docker_backend import DockerBackend
from tests.provisioner.sockets.fakes import Engine, FakeGateway, short_home


@pytest.fixture(autouse=True)
def fake_sockets():
    """These tests talk to real facility sockets: no stand-in for them (see conftest)."""


@pytest.fixture
def config():
    home = short_home()
    yield Config(home=home / "home", idle_timeout=60, health_timeout=3.0)
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

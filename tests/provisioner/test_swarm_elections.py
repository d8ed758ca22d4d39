"""The managers electing a leader (right after a node returns): for a few seconds every manager
answers "The swarm does not have a leader". An operator's command waits that out for a bounded
time (host/swarm.py) instead of failing; any other error still fails at once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from provisioner.cli.cluster_facilities import ClusterFacilities
from provisioner.host.errors import DockerError
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import Swarm
from tests.provisioner.fakeconfigs import ConfigClient, ConfigStore
from tests.provisioner.fakedocker import api_error
from tests.provisioner.fakeswarm_replicated import FakeSwarm
from tests.provisioner.test_swarm_service import spec_of

# What a manager's engine answers meanwhile (HTTP 503), word for word.
NO_LEADER = (
    "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too "
    "few managers are online. Make sure more than half of the managers are online."
)


def failing(obj, method: str, times: int | None, status: int = 503, message: str = NO_LEADER):
    """Make `obj.method` fail `times` times (None: always) before it answers; its calls."""
    real, calls = getattr(obj, method), []

    def call(*args, **kwargs):
        calls.append(args)
        if times is None or len(calls) <= times:
            raise api_error(status, message)
        return real(*args, **kwargs)

    setattr(obj, method, call)
    return calls


def cli(config, client) -> ClusterFacilities:
    """The CLI's view of the cluster, over this manager's engine client."""
    return ClusterFacilities(config, SimpleNamespace(client=client), lambda message: None)


@pytest.fixture
def fake(config) -> FakeSwarm:
    fake = FakeSwarm()
    for name in ("node1", "node2", "node3"):
        fake.add_node(name)
    Swarm(fake).create_service(facility_service_spec(spec_of(config), "node2"))
    return fake


def test_inspecting_a_service_waits_out_an_election(config, fake):
    swarm = cli(config, fake).swarm
    calls = failing(fake.api, "inspect_service", times=2)
    state = swarm.service("medcell-praxis")
    assert state is not None and state.node == "node2"
    assert len(calls) == 3


def test_scaling_waits_out_an_election(config, fake):
    swarm = cli(config, fake).swarm
    failing(fake.api, "update_service", times=1)
    swarm.scale("medcell-praxis", 0)
    assert swarm.service("medcell-praxis").replicas == 0


def test_taking_a_lock_waits_out_an_election(config):
    client = ConfigClient(ConfigStore())
    calls = failing(client.api, "create_config", times=2)
    with cli(config, client).locks.hold("praxis"):
        assert len(calls) == 3


def test_an_election_that_lasts_fails_with_its_message_once_the_bound_passed(config, fake):
    swarm = Swarm(fake, election_seconds=1.0)
    calls = failing(fake.api, "inspect_service", times=None)
    with pytest.raises(DockerError) as failed:
        swarm.service("medcell-praxis")
    assert "inspecting service medcell-praxis" in str(failed.value)
    assert "does not have a leader" in str(failed.value)
    assert len(calls) >= 2


def test_any_other_error_fails_at_once(config, fake):
    swarm = cli(config, fake).swarm
    calls = failing(fake.api, "inspect_service", times=None, status=500, message="disk full")
    with pytest.raises(DockerError, match="disk full"):
        swarm.service("medcell-praxis")
    assert len(calls) == 1


def test_without_an_election_bound_a_call_is_asked_once(config, fake):
    # What the supervisors use: their own loops decide what a manager's silence means.
    calls = failing(fake.api, "inspect_service", times=None)
    with pytest.raises(DockerError, match="does not have a leader"):
        Swarm(fake).service("medcell-praxis")
    assert len(calls) == 1

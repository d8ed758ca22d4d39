"""Sleep and wake (provisioner/host/lifecycle.py) written once, over both engines
(provisioner/host/engine.py): the local engine of a single host and Swarm services.

Real facility sockets behind both; the Swarm manager is a fake whose tasks start and stop them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from medcell_common.interfaces import RouteState
from provisioner.host import facility_http, lifecycle, routes, specs, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import FacilityEngine, LocalEngine, SwarmEngine
from provisioner.host.errors import FacilityNotFound, WakeFailed
from provisioner.host.swarm import Swarm
from tests.provisioner.fakeswarm_replicated import FakeSwarm
from tests.provisioner.sockets.fakes import Engine, FakeFacility


@dataclass
class Host:
    """One kind of engine with facilities on it, as lifecycle's callers hand it over."""

    config: Config
    engine: FacilityEngine
    add: object  # add(slug) -> FakeFacility, awake
    swarm: FakeSwarm | None = None
    apps: dict[str, FakeFacility] = field(default_factory=dict)


def _local(config: Config, docker: Engine) -> Host:
    return Host(config, LocalEngine(config, DockerBackend(docker)), docker.add_facility)


def _swarm(config: Config) -> Host:
    fake = FakeSwarm()
    fake.add_node("node1")
    engine = SwarmEngine(config, Swarm(fake))
    host = Host(config, engine, None, swarm=fake)
    fake.on_start = lambda name: host.apps[name].boot()
    fake.on_stop = lambda name: host.apps[name].halt()

    def add(slug: str) -> FakeFacility:
        facility = config.facility(slug)
        app = host.apps[facility.container] = FakeFacility(config, slug)
        engine.run(specs.facility_spec(config, facility, slug, "7d"), node="node1")
        state_file.save(config, slug, state_file.FacilityState())
        routes.set_route(config, slug, RouteState.RUNNING)
        return app

    host.add = add
    return host


@pytest.fixture(params=["local", "swarm"])
def host(request, config, engine, gateway) -> Host:
    made = _local(config, engine) if request.param == "local" else _swarm(config)
    yield made
    for app in made.apps.values():
        app.halt()


def route(config: Config, slug: str) -> str:
    return routes.read_routes(config)["facilities"][slug]["state"]


def test_an_idle_facility_sleeps_and_wakes_again(host):
    app = host.add("praxis")
    app.idle, app.next_deadline = 120.0, float(round(time.time()) + 3600)
    assert host.engine.locate("praxis").running
    assert lifecycle.put_to_sleep(host.config, host.engine, "praxis", require_idle=60)
    assert not host.engine.locate("praxis").running
    assert not facility_http.healthy(host.config, "praxis")
    st = state_file.load(host.config, "praxis")
    assert st.asleep and st.wake_at == app.next_deadline
    assert route(host.config, "praxis") == RouteState.ASLEEP

    lifecycle.wake(host.config, host.engine, "praxis", reason="request")
    assert host.engine.locate("praxis").running
    assert facility_http.healthy(host.config, "praxis")
    assert not state_file.load(host.config, "praxis").asleep
    assert route(host.config, "praxis") == RouteState.RUNNING
    assert app.boots == 2


def test_a_busy_facility_stays_awake(host):
    app = host.add("praxis")
    app.idle = 59.0
    assert not lifecycle.put_to_sleep(host.config, host.engine, "praxis", require_idle=60)
    assert host.engine.locate("praxis").running
    assert route(host.config, "praxis") == RouteState.RUNNING


def test_a_request_during_the_handshake_keeps_it_awake(host):
    app = host.add("praxis")
    app.idle = 120.0

    def request_arrives(app: FakeFacility) -> None:
        if app.status_calls == 2:
            app.requests += 1

    app.on_status = request_arrives
    assert not lifecycle.put_to_sleep(host.config, host.engine, "praxis", require_idle=60)
    assert host.engine.locate("praxis").running
    assert not state_file.load(host.config, "praxis").asleep
    assert route(host.config, "praxis") == RouteState.RUNNING


def test_an_unknown_facility_is_not_found(host):
    with pytest.raises(FacilityNotFound):
        lifecycle.wake(host.config, host.engine, "nobody", reason="request")
    with pytest.raises(FacilityNotFound):
        lifecycle.put_to_sleep(host.config, host.engine, "nobody", require_idle=60)


def test_lifecycle_takes_a_bare_backend_as_the_local_engine(config, engine, gateway):
    engine.add_facility("praxis").idle = 120.0
    assert lifecycle.put_to_sleep(config, DockerBackend(engine), "praxis", require_idle=60)
    assert engine.containers_by_name["medcell-praxis"].status == "exited"


# Swarm only


@pytest.fixture
def swarm_host(config, gateway) -> Host:
    made = _swarm(config)
    yield made
    for app in made.apps.values():
        app.halt()


def test_a_task_that_cannot_start_fails_the_wake_and_leaves_zero_replicas(swarm_host):
    host = swarm_host
    host.add("praxis").idle = 120.0
    assert lifecycle.put_to_sleep(host.config, host.engine, "praxis", require_idle=60)
    host.swarm.reject = "invalid mount config for type bind: bind source path does not exist"
    with pytest.raises(WakeFailed, match=r"could not be woken \(start_failed\)"):
        lifecycle.wake(host.config, host.engine, "praxis", reason="request", timeout=2)
    service = host.swarm.services_by_name["medcell-praxis"]
    assert service["Spec"]["Mode"] == {"Replicated": {"Replicas": 0}}
    st = state_file.load(host.config, "praxis")
    assert st.health == "unhealthy" and st.error == "wake failed: start_failed"


def test_a_service_whose_task_is_not_running_is_scaled_to_zero_when_put_to_sleep(swarm_host):
    host = swarm_host
    host.add("praxis")
    task = host.swarm.tasks_by_service["medcell-praxis"][0]
    task["Status"]["State"] = "starting"  # Swarm is bringing it up again
    host.apps["medcell-praxis"].halt()
    where = host.engine.locate("praxis")
    assert (where.running, where.starting, where.node) == (False, True, "node1")
    assert lifecycle.put_to_sleep(host.config, host.engine, "praxis", require_idle=60)
    assert host.swarm.services_by_name["medcell-praxis"]["Spec"]["Mode"]["Replicated"] == {
        "Replicas": 0
    }
    assert state_file.load(host.config, "praxis").asleep
    assert route(host.config, "praxis") == RouteState.ASLEEP


def test_where_a_swarm_facility_is(swarm_host):
    host = swarm_host
    host.add("praxis")
    where = host.engine.locate("praxis")
    task = host.swarm.tasks_by_service["medcell-praxis"][0]
    assert where.running and where.node == "node1" and where.state == "running"
    assert where.container == task["Status"]["ContainerStatus"]["ContainerID"]
    host.engine.remove("praxis")
    assert host.engine.locate("praxis") is None
    assert not facility_http.healthy(host.config, "praxis")
    host.engine.remove("praxis")  # a missing one is fine

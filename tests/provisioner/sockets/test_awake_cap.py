"""The cap on awake facilities (MEDCELL_MAX_AWAKE): a full host makes room by putting the least
recently used facility to sleep, never one with a request in flight or used a moment ago.
Fake engine, fake facilities on real sockets, the supervisor's real wake socket."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from provisioner.host.docker_backend import DockerBackend
from provisioner.supervisor.service import Supervisor, wake_queue
from tests.clock import FakeClock
from tests.provisioner.sockets.test_supervisor import post, route, settle, status_of, wake_all


@pytest.fixture
def capped(config, engine, gateway):
    """A serving supervisor on a host that holds three awake facilities (idle time: an hour)."""
    made = []

    def start() -> Supervisor:
        supervisor = Supervisor(
            dataclasses.replace(config, max_awake=3, idle_timeout=3600),
            DockerBackend(engine),
            clock=FakeClock(),
        )
        made.append(supervisor)
        supervisor.start_server()
        settle(supervisor)  # reconcile, and the first probe of every awake facility
        return supervisor

    yield start
    for supervisor in made:
        supervisor.close()


def awake_with_idle(engine, **idle: float) -> None:
    for slug, seconds in idle.items():
        engine.add_facility(slug).idle = seconds


def test_waking_one_more_than_the_cap_puts_the_least_recently_used_to_sleep(config, engine, capped):
    awake_with_idle(engine, recent=100.0, oldest=900.0, middle=300.0)
    engine.add_facility("newcomer", running=False, asleep=True)
    supervisor = capped()
    assert supervisor.awake.count() == 3

    code, _, body = post(config, "/wake/newcomer")

    assert code == 200 and body["state"] == "running"
    assert status_of(engine, "newcomer") == "running"
    assert status_of(engine, "oldest") == "exited" and route(config, "oldest") == "asleep"
    assert status_of(engine, "middle") == "running" and status_of(engine, "recent") == "running"
    assert supervisor.awake.count() == 3
    settle(supervisor)  # the scheduler took the eviction as a sleep of its own
    assert supervisor.scheduler.entries["oldest"].mode == "asleep"


def test_a_facility_with_a_request_in_flight_is_never_put_to_sleep_for_room(config, engine, capped):
    awake_with_idle(engine, recent=100.0, downloading=900.0, middle=300.0)
    engine.apps["medcell-downloading"].inflight = 1  # a long download, started long ago
    engine.add_facility("newcomer", running=False, asleep=True)
    capped()

    code, _, _ = post(config, "/wake/newcomer")

    assert code == 200
    assert status_of(engine, "downloading") == "running"
    assert status_of(engine, "middle") == "exited"
    assert "medcell-downloading" not in engine.stops


def test_when_every_awake_facility_was_used_a_moment_ago_the_wake_is_refused_503(
    config, engine, capped
):
    awake_with_idle(engine, a=5.0, b=10.0, c=59.0)  # all within the grace period
    engine.add_facility("newcomer", running=False, asleep=True)
    capped()

    code, headers, body = post(config, "/wake/newcomer")

    assert code == 503 and body["error"]["code"] == "no_room"
    assert int(headers["Retry-After"]) > 0
    assert status_of(engine, "newcomer") == "exited" and route(config, "newcomer") == "asleep"
    assert engine.stops == []


def test_a_facility_kept_awake_by_its_operator_is_not_put_to_sleep_for_room(config, engine, capped):
    engine.add_facility("pinned", idle=0).idle = 900.0  # `--idle never`
    awake_with_idle(engine, b=300.0, c=100.0)
    engine.add_facility("newcomer", running=False, asleep=True)
    capped()

    assert post(config, "/wake/newcomer")[0] == 200
    assert status_of(engine, "pinned") == "running"
    assert status_of(engine, "b") == "exited"


def test_as_many_wakes_at_once_as_the_host_holds_are_all_answered(config, engine, gateway):
    slugs = [f"f{i}" for i in range(40)]
    for slug in slugs:
        engine.add_facility(slug, running=False, asleep=True)
    supervisor = Supervisor(
        dataclasses.replace(config, max_awake=40), DockerBackend(engine), clock=FakeClock()
    )
    try:
        supervisor.start_server()
        settle(supervisor)
        engine.gate = threading.Event()
        results, threads = wake_all(config, slugs)
        engine.gate.set()
        for thread in threads:
            thread.join(60)
    finally:
        supervisor.close()
    assert sorted(r[1] for r in results) == [200] * 40


def test_the_wake_queue_is_sized_by_the_cpus_and_the_awake_cap():
    running, waiting = wake_queue(500)
    assert 2 <= running <= 500 and waiting == 500
    assert wake_queue(1)[0] == 2  # at least two at once, so one slow start does not stall all
    assert wake_queue(40, running=3, waiting=7) == (3, 7)


def test_the_operator_sets_the_wakes_at_once(config, engine):
    """MEDCELL_WAKES_AT_ONCE reaches the supervisor's wake pool, and its container's settings."""
    from provisioner.host.config import Config
    from provisioner.host.specs import supervisor_spec

    chosen = Config.from_env({"MEDCELL_HOME": str(config.home), "MEDCELL_WAKES_AT_ONCE": "6"})
    assert chosen.wakes_at_once == 6
    supervisor = Supervisor(dataclasses.replace(config, wakes_at_once=6), DockerBackend(engine))
    try:
        assert supervisor.wakes.max_running == 6
    finally:
        supervisor.close()
    spec = supervisor_spec(chosen, "1000:1000", None, "/var/run/docker.sock", None)
    assert spec.environment["MEDCELL_WAKES_AT_ONCE"] == "6"
    unset = supervisor_spec(config, "1000:1000", None, "/var/run/docker.sock", None)
    assert "MEDCELL_WAKES_AT_ONCE" not in unset.environment  # the supervisor counts its CPUs

"""put_to_sleep and wake (provisioner/host/lifecycle.py): fake engine, real facility sockets.

The facility here is a tiny HTTP server on a real unix socket answering /healthz and
/_medcell/status; the gateway is a thread that acknowledges each routes.json generation.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from provisioner.host import lifecycle, locks, routes, state_file
from provisioner.host.config import Config
from provisioner.host.errors import Busy, FacilityNotFound, FacilityStopped, WakeFailed
from tests.clock import FakeClock
from tests.provisioner.fakedocker import api_error
from tests.provisioner.sockets.fakes import Engine, wait_until


def route(config: Config, slug: str) -> str:
    return routes.read_routes(config)["facilities"][slug]["state"]


def container_status(engine: Engine, slug: str) -> str:
    return engine.containers_by_name[f"medcell-{slug}"].status


# put_to_sleep


def test_idle_facility_sleeps_and_remembers_its_deadline(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle, app.next_deadline = 120.0, 1_800_003_600.0
    clock = FakeClock()
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60, clock=clock)
    assert container_status(engine, "praxis") == "exited"
    st = state_file.load(config, "praxis")
    assert st.asleep and st.wake_at == 1_800_003_600.0 and st.slept_at == clock.now
    assert route(config, "praxis") == "asleep"
    # The gateway had applied the asleep route before the container was stopped.
    assert routes.applied_generation(config) >= routes.read_routes(config)["generation"]


class KilledHere(BaseException):
    """The supervisor's process ending at this point (SIGKILL): nothing after it runs."""


def test_supervisor_killed_while_stopping_leaves_the_deadline_remembered(
    config, engine, backend, gateway, monkeypatch
):
    app = engine.add_facility("praxis")
    app.idle, app.next_deadline = 120.0, float(round(time.time()) + 3600)
    stop = backend.stop

    def stop_then_die(name: str, timeout: int) -> None:
        stop(name, timeout=timeout)
        raise KilledHere

    monkeypatch.setattr(backend, "stop", stop_then_die)
    with pytest.raises(KilledHere):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "exited"
    st = state_file.load(config, "praxis")
    # What a restarted supervisor reads: asleep, and when to wake it for its next deletion.
    assert st.asleep and st.wake_at == app.next_deadline
    assert route(config, "praxis") == "asleep"


def test_facility_not_idle_long_enough_stays_awake(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle = 59.0
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert not state_file.load(config, "praxis").asleep
    assert route(config, "praxis") == "running"


@pytest.mark.parametrize("work", ["inflight", "busy"])
def test_request_in_flight_or_deletion_job_keeps_it_awake(config, engine, backend, gateway, work):
    app = engine.add_facility("praxis")
    app.idle = 500.0
    setattr(app, work, 1 if work == "inflight" else True)
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert engine.stops == []


def test_request_that_slipped_in_during_the_handshake_undoes_the_sleep(
    config, engine, backend, gateway
):
    app = engine.add_facility("praxis")
    app.idle = 500.0

    def request_arrives_before_reload(table):
        if table["facilities"]["praxis"]["state"] == "asleep":
            app.requests += 1  # nginx still had the old route for this one

    gateway.on_apply = request_arrives_before_reload
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert engine.stops == []
    assert not state_file.load(config, "praxis").asleep
    assert route(config, "praxis") == "running"


def test_download_started_during_the_handshake_undoes_the_sleep(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle = 500.0
    gateway.on_apply = lambda table: setattr(app, "inflight", 1)
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert route(config, "praxis") == "running"


def test_gateway_that_does_not_apply_the_route_blocks_the_sleep(
    config, engine, backend, gateway, monkeypatch
):
    monkeypatch.setattr(lifecycle, "APPLY_TIMEOUT", 0.2)
    app = engine.add_facility("praxis")
    app.idle = 500.0
    gateway.acknowledge = False
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert route(config, "praxis") == "running"


def test_without_a_running_gateway_nothing_needs_to_acknowledge(config, engine, backend):
    engine.containers_by_name[config.gateway_container].status = "exited"
    engine.add_facility("praxis").idle = 500.0
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert route(config, "praxis") == "asleep"


def test_operator_sleep_waits_for_in_flight_work(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.inflight = 1
    clock = FakeClock()

    def wait(seconds):
        clock.advance(seconds)
        app.inflight = 0  # the upload finished meanwhile

    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None, clock=clock,
                                  sleep=wait)  # fmt: skip
    assert container_status(engine, "praxis") == "exited"


def test_operator_sleep_gives_up_after_thirty_seconds_of_work(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.busy = True  # a key rotation that does not end
    clock = FakeClock()
    with pytest.raises(Busy):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None, clock=clock,
                               sleep=clock.advance)  # fmt: skip
    assert clock.now - FakeClock().now >= 30
    assert container_status(engine, "praxis") == "running"
    assert route(config, "praxis") == "running"


def test_sleep_refused_while_another_command_holds_the_facility(config, engine, backend, gateway):
    engine.add_facility("praxis").idle = 500.0
    with locks.facility_lock(config, "praxis"), pytest.raises(Busy):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"


def test_operator_sleep_of_a_stopped_facility_is_refused(config, engine, backend):
    engine.add_facility("praxis", running=False, desired="stopped")
    with pytest.raises(FacilityStopped):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None)
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)


# wake


def test_wake_starts_an_asleep_facility_and_routes_it(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle = 500.0
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    lifecycle.wake(config, backend, "praxis", reason="request")
    assert container_status(engine, "praxis") == "running"
    assert app.boots == 2
    st = state_file.load(config, "praxis")
    assert not st.asleep and st.health == "ok" and st.wake_at is None
    assert route(config, "praxis") == "running"


def test_wake_of_an_awake_facility_starts_nothing(config, engine, backend):
    engine.add_facility("praxis")
    routes.set_route(config, "praxis", "asleep")  # a stale route is put right
    started = list(engine.started)
    lifecycle.wake(config, backend, "praxis", reason="operator")
    assert engine.started == started
    assert route(config, "praxis") == "running"


def test_wake_of_an_unknown_facility_starts_nothing(config, engine, backend):
    with pytest.raises(FacilityNotFound):
        lifecycle.wake(config, backend, "nobody", reason="request")
    assert engine.started == []


def test_wake_of_a_stopped_facility_is_refused(config, engine, backend):
    engine.add_facility("praxis", running=False, desired="stopped")
    with pytest.raises(FacilityStopped):
        lifecycle.wake(config, backend, "praxis", reason="request")
    assert container_status(engine, "praxis") == "exited"


def test_failed_wake_marks_the_facility_unhealthy(config, engine, backend):
    engine.add_facility("praxis", running=False, asleep=True)
    engine.failures["start"] = api_error(500, "cannot start container")
    with pytest.raises(WakeFailed):
        lifecycle.wake(config, backend, "praxis", reason="request")
    st = state_file.load(config, "praxis")
    assert st.asleep and st.health == "unhealthy" and st.error
    assert route(config, "praxis") == "asleep"


def test_wake_that_never_answers_fails_in_time(config, engine, backend):
    app = engine.add_facility("praxis", running=False, asleep=True)
    app.broken = True
    with pytest.raises(WakeFailed):
        lifecycle.wake(config, backend, "praxis", reason="deadline", timeout=0.3)
    assert state_file.load(config, "praxis").health == "unhealthy"


def test_wake_waits_for_a_sleep_in_progress(config, engine, backend):
    engine.add_facility("praxis", running=False, asleep=True)
    with locks.facility_lock(config, "praxis"):
        woken = threading.Thread(
            target=lifecycle.wake,
            args=(config, backend, "praxis"),
            kwargs={"reason": "request", "lock_wait": 10},
        )
        woken.start()
        time.sleep(0.1)
        assert engine.started == []  # not while the lock is held
    woken.join(10)
    assert container_status(engine, "praxis") == "running"


def test_log_lines_name_only_slug_event_and_numbers(config, engine, backend, gateway, caplog):
    engine.add_facility("praxis").idle = 500.0
    with caplog.at_level(logging.INFO, logger="medcell.lifecycle"):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
        lifecycle.wake(config, backend, "praxis", reason="request")
    events = [r.fields for r in caplog.records]
    assert [e["event"] for e in events] == ["slept", "woke"]
    for fields in events:
        assert set(fields) <= {"event", "slug", "seconds", "wake_in", "reason", "error"} | {
            "start",  # a wake's phases, in seconds
            "answer",
            "sweep",
        }
        assert str(config.home) not in json.dumps(fields)


def test_sleep_of_an_already_sleeping_facility_changes_nothing(config, engine, backend):
    engine.add_facility("praxis", running=False, asleep=True, wake_at=1_800_000_600.0)
    generation = routes.read_routes(config)["generation"]
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None)
    assert routes.read_routes(config)["generation"] == generation  # no needless nginx reload
    assert state_file.load(config, "praxis").wake_at == 1_800_000_600.0


def _wake_in_background(config, backend, slug: str, **options) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            lifecycle.wake(config, backend, slug, reason="deadline", **options)
            outcome.append("woke")
        except Exception as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_woken_facility_is_routed_only_once_it_confirms_its_overdue_deletions_done(
    config, engine, backend, gateway
):
    # Asleep (or on a node cut off from the managers) past a conversation's expiry.
    overdue = time.time() - 120
    app = engine.add_facility("praxis", running=False, asleep=True, wake_at=overdue)
    app.busy_on_boot, app.next_deadline = True, overdue
    thread, outcome = _wake_in_background(config, backend, "praxis", timeout=10)
    # It answers on its socket, but its first sweep runs: nothing is routed to it yet.
    wait_until(lambda: app.status_calls >= 2)
    assert route(config, "praxis") == "asleep" and not outcome
    # The sweep is through, yet the facility still reports the deadline as overdue.
    app.busy = False
    calls = app.status_calls
    wait_until(lambda: app.status_calls >= calls + 2)
    assert route(config, "praxis") == "asleep" and not outcome
    app.next_deadline = time.time() + 3600
    thread.join(10)
    assert outcome == ["woke"]
    assert route(config, "praxis") == "running"
    assert not state_file.load(config, "praxis").asleep


def test_a_facility_that_never_confirms_its_deletions_is_not_routed(config, engine, backend):
    app = engine.add_facility("praxis", running=False, asleep=True)
    app.busy_on_boot = True  # its deletion job never gets through
    with pytest.raises(WakeFailed):
        lifecycle.wake(config, backend, "praxis", reason="deadline", timeout=0.5)
    assert route(config, "praxis") == "asleep"
    assert state_file.load(config, "praxis").error == "wake failed: sweep_timeout"

"""The supervisor (provisioner/supervisor): its scheduler over an injected clock, its wake API
over a real unix socket, the fake engine, and fake facilities on real sockets."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioner.host import locks, routes, state_file
from provisioner.supervisor.service import Supervisor
from tests.clock import FakeClock
from tests.provisioner.fakedocker import api_error
from tests.provisioner.sockets.fakes import Engine, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def supervisor(make) -> Supervisor:
    return make()


@pytest.fixture
def serving(supervisor) -> Supervisor:
    supervisor.start_server()
    supervisor.scheduler.tick()  # the first reconcile: it knows every facility
    return supervisor


def settled(supervisor: Supervisor) -> bool:
    pools = (supervisor.wakes, supervisor.sleeps, supervisor.scheduler.probes)
    return all(pool.settled() for pool in pools)


def settle(supervisor: Supervisor) -> None:
    """One tick, then until nothing is left running: wait for the jobs (probes, wakes, sleeps)
    it started and let the scheduler take their results in another tick."""
    deadline = time.monotonic() + 15
    supervisor.scheduler.tick()
    while True:
        while not settled(supervisor):
            assert time.monotonic() < deadline, "jobs did not finish"
            time.sleep(0.005)
        supervisor.scheduler.tick()
        if settled(supervisor):
            return


def run_for(supervisor: Supervisor, clock: FakeClock, seconds: int) -> None:
    for _ in range(seconds):
        clock.advance(1)
        settle(supervisor)


def post(config, path: str, method: str = "POST") -> tuple[int, dict, dict]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(config.supervisor_socket))
    connection = http.client.HTTPConnection("localhost")
    connection.sock = sock
    connection.request(method, path)
    response = connection.getresponse()
    body = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, dict(response.headers), body


def wake_all(config, slugs: list[str]) -> tuple[list, list[threading.Thread]]:
    results: list = []
    threads = [
        threading.Thread(target=lambda s=s: results.append((s, *post(config, f"/wake/{s}"))))
        for s in slugs
    ]
    for thread in threads:
        thread.start()
    return results, threads


def status_of(engine: Engine, slug: str) -> str:
    return engine.containers_by_name[f"medcell-{slug}"].status


def route(config, slug: str) -> str:
    return routes.read_routes(config)["facilities"][slug]["state"]


# falling asleep


def test_falls_asleep_after_its_idle_time_probing_only_rarely(config, engine, supervisor, clock):
    app = engine.add_facility("praxis")
    started = clock.now
    app.on_status = lambda app: setattr(app, "idle", clock.now - started)
    settle(supervisor)
    assert app.status_calls == 1
    run_for(supervisor, clock, 29)
    assert app.status_calls == 1  # no probe until the health interval is up
    run_for(supervisor, clock, 30)
    assert status_of(engine, "praxis") == "running"  # 59 s idle
    run_for(supervisor, clock, 1)
    assert status_of(engine, "praxis") == "exited"
    assert app.status_calls <= 5  # two health probes, one at 60 s, two in the handshake
    assert state_file.load(config, "praxis").asleep
    assert route(config, "praxis") == "asleep"


def test_does_not_sleep_while_a_request_is_in_flight(config, engine, supervisor, clock):
    app = engine.add_facility("praxis")
    app.idle, app.inflight = 3600.0, 1  # a long download
    run_for(supervisor, clock, 120)
    assert status_of(engine, "praxis") == "running"
    app.inflight = 0
    run_for(supervisor, clock, 10)
    assert status_of(engine, "praxis") == "exited"


def test_does_not_sleep_when_requests_changed_during_the_handshake(
    config, engine, supervisor, clock, gateway
):
    app = engine.add_facility("praxis")
    app.idle = 3600.0
    gateway.on_apply = lambda table: setattr(app, "requests", app.requests + 1)
    settle(supervisor)
    assert status_of(engine, "praxis") == "running"
    assert route(config, "praxis") == "running"
    assert not state_file.load(config, "praxis").asleep


def test_per_facility_idle_timeout_wins_and_never_means_never(config, engine, supervisor, clock):
    never = engine.add_facility("never", idle=0)
    slow = engine.add_facility("slow", idle=300)
    started = clock.now
    for app in (never, slow):
        app.on_status = lambda app: setattr(app, "idle", clock.now - started)
    run_for(supervisor, clock, 299)
    assert status_of(engine, "slow") == "running"
    run_for(supervisor, clock, 2)
    assert status_of(engine, "slow") == "exited"
    run_for(supervisor, clock, 3600)
    assert status_of(engine, "never") == "running"


# the wake API


def test_concurrent_wakes_of_one_facility_cause_one_start(config, engine, serving):
    engine.add_facility("praxis", running=False, asleep=True)
    serving.scheduler.tick()
    engine.gate = threading.Event()
    results, threads = wake_all(config, ["praxis"] * 8)
    wait_until(lambda: serving.server.active == 8)
    engine.gate.set()
    for thread in threads:
        thread.join(30)
    assert [r[1] for r in results] == [200] * 8
    assert all(r[3] == {"slug": "praxis", "state": "running"} for r in results)
    assert engine.started.count("medcell-praxis") == 1
    assert route(config, "praxis") == "running"


def test_wake_storm_is_bounded_and_the_excess_answered_busy(config, engine, make):
    serving = make(max_waking=4, max_waiting=16)
    serving.start_server()
    slugs = [f"f{i}" for i in range(4 + 16 + 2)]
    for slug in slugs:
        engine.add_facility(slug, running=False, asleep=True)
    serving.scheduler.reconcile(serving.clock())
    engine.gate = threading.Event()
    results, threads = wake_all(config, slugs)
    wait_until(lambda: len(results) == 2 and serving.wakes.pending() == len(slugs) - 2)
    for _, code, headers, body in results:
        assert code == 503 and body["error"]["code"] == "busy" and headers["Retry-After"]
    engine.gate.set()
    for thread in threads:
        thread.join(60)
    assert sorted(r[1] for r in results) == [200] * (len(slugs) - 2) + [503, 503]
    assert len(engine.started) == len(slugs) - 2


@pytest.mark.parametrize("slug", ["nobody", "UPPER", "gateway", "a..b", "x" * 40, "%2e%2e", ""])
def test_unknown_or_invalid_slug_is_404_and_wakes_nothing(config, engine, serving, slug):
    engine.add_facility("praxis", running=False, asleep=True)
    inspects = engine.inspects
    code, _, body = post(config, f"/wake/{slug}")
    assert code == 404 and body["error"]["code"] == "not_found"
    assert engine.started == [] and engine.inspects == inspects  # Docker was not even asked


def test_the_socket_offers_nothing_but_wake(config, engine, serving):
    engine.add_facility("praxis", running=False, asleep=True)
    assert post(config, "/wake/praxis", method="GET")[0] == 405
    assert post(config, "/status/praxis")[0] == 404
    assert post(config, "/wake/praxis?x=1")[0] == 404
    assert engine.started == []
    assert os.stat(config.supervisor_socket).st_mode & 0o777 == 0o666


def test_stopped_facility_answers_409_and_stays_stopped(config, engine, serving):
    engine.add_facility("praxis", running=False, desired="stopped")
    serving.scheduler.tick()
    code, _, body = post(config, "/wake/praxis")
    assert code == 409 and body["error"]["code"] == "facility_stopped"
    assert engine.started == []


def test_failed_wake_answers_503_and_marks_the_facility_unhealthy(config, engine, serving):
    engine.add_facility("praxis", running=False, asleep=True)
    engine.failures["start"] = api_error(500, "cannot start container")
    code, headers, body = post(config, "/wake/praxis")
    assert code == 503 and body["error"]["code"] == "wake_failed" and headers["Retry-After"]
    assert state_file.load(config, "praxis").health == "unhealthy"


# deadlines


def test_deadline_wake_and_back_to_sleep_once_the_work_is_done(config, engine, supervisor, clock):
    app = engine.add_facility("praxis", running=False, asleep=True, wake_at=clock.now + 100)
    app.busy_on_boot = True  # the first sweep after start
    routed_while_deleting = []

    def deleting(app) -> None:
        routed_while_deleting.append(route(config, "praxis"))
        if app.status_calls >= 3:  # its first sweep is through
            app.busy, app.next_deadline = False, clock.now + 3600

    app.on_status = deleting
    settle(supervisor)
    run_for(supervisor, clock, 89)
    assert engine.started == []
    run_for(supervisor, clock, 1)  # 10 s before the deadline
    assert status_of(engine, "praxis") == "running"
    # Nothing was routed to it while it deleted; it is, once it confirmed that work done.
    assert routed_while_deleting[:2] == ["asleep", "asleep"]
    assert route(config, "praxis") == "running"
    run_for(supervisor, clock, 3)
    assert status_of(engine, "praxis") == "exited"
    st = state_file.load(config, "praxis")
    assert st.asleep and st.wake_at == app.next_deadline


def test_deadline_wake_that_gets_a_request_stays_awake(config, engine, supervisor, clock):
    app = engine.add_facility("praxis", running=False, asleep=True, wake_at=clock.now + 5)
    settle(supervisor)
    assert status_of(engine, "praxis") == "running"
    app.requests, app.next_deadline = 1, clock.now + 3600
    run_for(supervisor, clock, 30)
    assert status_of(engine, "praxis") == "running"  # the idle timeout decides now


def test_overdue_deadlines_after_downtime_are_woken_at_once(config, engine, make, clock):
    overdue = [f"late{i}" for i in range(12)]
    for slug in overdue:
        engine.add_facility(slug, running=False, asleep=True, wake_at=clock.now - 3600)
    engine.add_facility("later", running=False, asleep=True, wake_at=clock.now + 3600)
    running, most = [0], [0]
    original = engine.fail

    def counting_start(step, subject):
        if step != "start":
            return original(step, subject)
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.02)
        running[0] -= 1
        original(step, subject)

    engine.fail = counting_start
    supervisor = make()  # the supervisor comes back after an hour away
    settle(supervisor)
    run_for(supervisor, clock, 3)  # the pool is kept full: a batch each second
    assert sorted(engine.started) == sorted(f"medcell-{s}" for s in overdue)
    assert most[0] <= supervisor.wakes.max_running


# reconcile


def test_reconcile_starts_desired_running_exited_containers(config, engine, supervisor, clock):
    engine.add_facility("crashed", running=False)  # should run (an engine restart)
    engine.add_facility("held", running=False, desired="stopped")
    engine.add_facility("asleep", running=False, asleep=True)
    settle(supervisor)
    assert engine.started == ["medcell-crashed"]
    assert route(config, "crashed") == "running"


def test_reconcile_backs_off_when_a_start_fails(config, engine, supervisor, clock):
    engine.add_facility("crashed", running=False)
    engine.failures["start"] = api_error(500, "no space left")
    settle(supervisor)
    engine.failures.clear()
    run_for(supervisor, clock, 4)
    assert engine.started == []
    run_for(supervisor, clock, 2)
    assert engine.started == ["medcell-crashed"]


def test_docker_is_listed_once_per_reconcile_and_never_per_tick(config, engine, supervisor, clock):
    for i in range(20):
        engine.add_facility(f"f{i}", running=False, asleep=True, wake_at=clock.now + 86400)
    lists, inspects = engine.lists, engine.inspects
    run_for(supervisor, clock, 120)
    assert engine.lists - lists <= 5  # at start, then every 30 s
    assert engine.inspects == inspects


def test_state_survives_a_supervisor_restart(config, engine, make, clock):
    app = engine.add_facility("praxis")
    app.idle, app.next_deadline = 3600.0, clock.now + 600
    first = make()
    settle(first)
    assert status_of(engine, "praxis") == "exited"
    first.close()
    second = make()  # a new instance: only the files tell it anything
    settle(second)
    assert status_of(engine, "praxis") == "exited"
    assert second.scheduler.known("praxis")
    run_for(second, clock, 589)
    assert engine.started == ["medcell-praxis"]  # woken 10 s before its deadline


def test_unhealthy_after_three_failed_probes_and_cleared_when_healthy(
    config, engine, supervisor, clock
):
    app = engine.add_facility("praxis")
    app.broken = True
    settle(supervisor)
    run_for(supervisor, clock, 5)
    assert state_file.load(config, "praxis").health == "ok"
    run_for(supervisor, clock, 5)
    st = state_file.load(config, "praxis")
    assert st.health == "unhealthy" and st.error
    app.broken = False
    run_for(supervisor, clock, 5)
    assert state_file.load(config, "praxis") == state_file.FacilityState()


def test_health_is_not_written_while_a_command_holds_the_facility(
    config, engine, supervisor, clock
):
    app = engine.add_facility("praxis")
    app.broken = True
    with locks.facility_lock(config, "praxis"):
        run_for(supervisor, clock, 15)
    assert state_file.load(config, "praxis").health == "ok"
    run_for(supervisor, clock, 5)
    assert state_file.load(config, "praxis").health == "unhealthy"


@pytest.mark.process
def test_sigterm_stops_the_supervisor_cleanly(config):
    env = {
        **os.environ,
        "MEDCELL_HOME": str(config.home),
        "DOCKER_HOST": f"unix://{config.home}/no-engine.sock",  # never the real engine
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.supervisor"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(config.supervisor_socket.exists, seconds=20)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
    lines = [json.loads(line) for line in process.stderr.read().splitlines()]
    assert {"started", "stopped"} <= {line["event"] for line in lines}
    assert not config.supervisor_socket.exists()


def test_facility_put_to_sleep_by_the_cli_is_not_marked_unhealthy(
    config, engine, supervisor, clock
):
    from provisioner.host import lifecycle

    app = engine.add_facility("praxis")
    settle(supervisor)
    app.idle = 5.0
    assert lifecycle.put_to_sleep(config, supervisor.backend, "praxis", require_idle=None)
    run_for(supervisor, clock, 60)
    st = state_file.load(config, "praxis")
    assert st.asleep and st.health == "ok"
    assert engine.started == ["medcell-praxis"]  # only the set-up's start: it stays asleep


def test_idle_facility_with_a_deadline_in_a_moment_does_that_work_before_sleeping(
    config, engine, supervisor, clock
):
    app = engine.add_facility("praxis")
    app.idle, app.next_deadline = 3600.0, clock.now + 40
    settle(supervisor)
    run_for(supervisor, clock, 40)
    assert status_of(engine, "praxis") == "running"
    app.next_deadline = clock.now + 86400  # done; the next one is tomorrow
    run_for(supervisor, clock, 3)
    assert status_of(engine, "praxis") == "exited"
    assert state_file.load(config, "praxis").wake_at == app.next_deadline

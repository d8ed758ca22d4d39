"""put_to_sleep and wake (provisioner/lifecycle.py): fake engine, real facility sockets.

The facility here is a tiny HTTP server on a real unix socket answering /healthz and
/_medcell/status; the gateway is a thread that acknowledges each routes.json generation.
"""

from __future__ import annotations

import json
import logging
import shutil
import socketserver
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from provisioner import desired, lifecycle, routes, state
from provisioner.config import Config
from provisioner.docker_backend import DockerBackend
from provisioner.errors import Busy, FacilityNotFound, FacilityStopped, WakeFailed
from tests.provisioner.fakedocker import FakeDocker, api_error


class FakeFacility:
    """A facility process: answers on its socket only while its container runs."""

    def __init__(self, config: Config, slug: str):
        self.config, self.slug = config, slug
        self.inflight, self.requests, self.idle, self.busy = 0, 0, 0.0, False
        self.next_deadline: float | None = None
        self.busy_on_boot = False  # the first sweep after start
        self.broken = False  # answers 500: a hung or failing app
        self.status_calls = 0
        self.on_status = None  # called before each status answer, to change things mid-handshake
        self.boots = 0
        self._server: socketserver.UnixStreamServer | None = None

    def boot(self) -> None:
        """A new process: counters start from zero."""
        self.inflight, self.requests, self.idle = 0, 0, 0.0
        self.busy = self.busy_on_boot
        self.boots += 1
        path = self.config.facility_socket(self.slug)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._server = _Server(str(path), _FacilityHandler)
        self._server.facility = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def halt(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.config.facility_socket(self.slug).unlink(missing_ok=True)

    def status(self) -> dict:
        self.status_calls += 1
        if self.on_status is not None:
            self.on_status(self)
        return {
            "inflight": self.inflight,
            "requests": self.requests,
            "idle_seconds": self.idle,
            "busy": self.busy,
            "next_deadline": self.next_deadline,
        }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    facility: FakeFacility


class _FacilityHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        app = self.server.facility
        if app.broken:
            self._send(500, {"error": "broken"})
        elif self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/_medcell/status" and "X-Forwarded-For" not in self.headers:
            self._send(200, app.status())
        else:
            self._send(404, {"error": "not found"})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args) -> None:
        pass


class Engine(FakeDocker):
    """The fake engine with facility processes behind its containers."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.apps: dict[str, FakeFacility] = {}
        self.gate: threading.Event | None = None  # set: `docker start` waits for it
        self.list_calls = 0
        self.stops: list[str] = []

    def fail(self, step: str, subject) -> None:
        if step == "start":
            if self.gate is not None:
                assert self.gate.wait(10), "test never opened the start gate"
            super().fail(step, subject)
            if subject.name in self.apps:
                self.apps[subject.name].boot()
            return
        super().fail(step, subject)

    def add_facility(self, slug: str, running: bool = True, **st) -> FakeFacility:
        config = self.config
        name = config.facility(slug).container
        container = self.containers.create(
            config.facility_image, name=name, labels=config.labels(facility=slug, role="facility")
        )
        app = self.apps[name] = FakeFacility(config, slug)
        original_stop = container.stop

        def stop(timeout: int = 10) -> None:
            self.stops.append(name)
            app.halt()
            original_stop(timeout)

        container.stop = stop
        if running:
            container.start()
        else:
            container.status = "exited"
        facility_state = desired.FacilityState(**st)
        desired.save(config, slug, facility_state)
        routes.set_route(config, slug, routes.route_state(running, facility_state))
        return app

    def add_gateway(self) -> None:
        self.images_present.add(self.config.gateway_image)
        container = self.containers.create(
            self.config.gateway_image, name=self.config.gateway_container, labels={}
        )
        container.status = "running"

    def shutdown(self) -> None:
        for app in self.apps.values():
            app.halt()


class FakeGateway:
    """Acknowledges every routes.json generation, like the gateway after an nginx reload."""

    def __init__(self, config: Config):
        self.config = config
        self.on_apply = None  # called with the table just before acknowledging it
        self.acknowledge = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        applied = -1
        while not self._stop.wait(0.005):
            table = routes.read_routes(self.config)
            if not self.acknowledge or not table or table.get("generation", 0) <= applied:
                continue
            if self.on_apply is not None:
                self.on_apply(table)
            applied = table["generation"]
            state.write_json_atomic(
                self.config.gateway_run_dir / routes.APPLIED_FILE, {"generation": applied}
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Clock:
    """An injected wall clock that tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def short_home() -> Path:
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer than that.
    return Path(tempfile.mkdtemp(prefix="mc-", dir="/tmp"))


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


def route(config: Config, slug: str) -> str:
    return routes.read_routes(config)["facilities"][slug]["state"]


def container_status(engine: Engine, slug: str) -> str:
    return engine.containers_by_name[f"medcell-{slug}"].status


# put_to_sleep


def test_idle_facility_sleeps_and_remembers_its_deadline(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle, app.next_deadline = 120.0, 1_800_003_600.0
    clock = Clock()
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60, clock=clock)
    assert container_status(engine, "praxis") == "exited"
    st = desired.load(config, "praxis")
    assert st.asleep and st.wake_at == 1_800_003_600.0 and st.slept_at == clock.now
    assert route(config, "praxis") == "asleep"
    # The gateway had applied the asleep route before the container was stopped.
    assert routes.applied_generation(config) >= routes.read_routes(config)["generation"]


def test_facility_not_idle_long_enough_stays_awake(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle = 59.0
    assert not lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert container_status(engine, "praxis") == "running"
    assert not desired.load(config, "praxis").asleep
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
    assert not desired.load(config, "praxis").asleep
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
    clock = Clock()

    def wait(seconds):
        clock.advance(seconds)
        app.inflight = 0  # the upload finished meanwhile

    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None, clock=clock,
                                  sleep=wait)  # fmt: skip
    assert container_status(engine, "praxis") == "exited"


def test_operator_sleep_gives_up_after_thirty_seconds_of_work(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.busy = True  # a key rotation that does not end
    clock = Clock()
    with pytest.raises(Busy):
        lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None, clock=clock,
                               sleep=clock.advance)  # fmt: skip
    assert clock.now - Clock().now >= 30
    assert container_status(engine, "praxis") == "running"
    assert route(config, "praxis") == "running"


def test_sleep_refused_while_another_command_holds_the_facility(config, engine, backend, gateway):
    engine.add_facility("praxis").idle = 500.0
    with state.facility_lock(config, "praxis"), pytest.raises(Busy):
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
    st = desired.load(config, "praxis")
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
    st = desired.load(config, "praxis")
    assert st.asleep and st.health == "unhealthy" and st.error
    assert route(config, "praxis") == "asleep"


def test_wake_that_never_answers_fails_in_time(config, engine, backend):
    app = engine.add_facility("praxis", running=False, asleep=True)
    app.broken = True
    with pytest.raises(WakeFailed):
        lifecycle.wake(config, backend, "praxis", reason="deadline", timeout=0.3)
    assert desired.load(config, "praxis").health == "unhealthy"


def test_wake_waits_for_a_sleep_in_progress(config, engine, backend):
    engine.add_facility("praxis", running=False, asleep=True)
    with state.facility_lock(config, "praxis"):
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
        assert set(fields) <= {"event", "slug", "seconds", "wake_in", "reason", "error"}
        assert str(config.home) not in json.dumps(fields)


def test_sleep_of_an_already_sleeping_facility_changes_nothing(config, engine, backend):
    engine.add_facility("praxis", running=False, asleep=True, wake_at=1_800_000_600.0)
    generation = routes.read_routes(config)["generation"]
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=None)
    assert routes.read_routes(config)["generation"] == generation  # no needless nginx reload
    assert desired.load(config, "praxis").wake_at == 1_800_000_600.0

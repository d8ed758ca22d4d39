"""Stand-ins with real unix sockets for the lifecycle and supervisor tests: a facility answering
/healthz and /_medcell/status, a Docker engine that starts and stops them, a gateway that
acknowledges route generations, and a clock the tests move."""

from __future__ import annotations

import json
import socketserver
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from provisioner.host import home, routes, state_file
from provisioner.host.config import Config
from tests.provisioner.fakedocker import FakeDocker


class FakeFacility:
    """A facility process: answers on its socket only while its container runs."""

    def __init__(self, config: Config, slug: str):
        self.config, self.slug = config, slug
        self.inflight, self.requests, self.idle, self.busy = 0, 0, 0.0, False
        self.next_deadline: float | None = None
        self.opens: list[int] = []  # starts of its opening hours, as its status reports them
        self.deletions: dict | None = None  # its running totals of deletions (None: none)
        self.storage: dict | None = None  # {"used_bytes", "quota_bytes"} (None: none)
        self.busy_on_boot = False  # the first sweep after start
        self.broken = False  # answers 500: a hung or failing app
        self.status_calls = 0
        self.on_status = None  # called before each status answer, to change things mid-handshake
        # A hostile facility: writes whatever it likes as its status answer (given the stream).
        self.raw_status = None
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
            "opens": self.opens,
            **({"deletions": self.deletions} if self.deletions is not None else {}),
            **({"storage": self.storage} if self.storage is not None else {}),
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
        elif self.path == "/_medcell/status" and app.raw_status is not None:
            app.status_calls += 1
            app.raw_status(self.wfile)
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
        facility_state = state_file.FacilityState(**st)
        state_file.save(config, slug, facility_state)
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
            home.write_json_atomic(
                self.config.gateway_run_dir / routes.APPLIED_FILE, {"generation": applied}
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(condition, seconds: float = 15) -> None:
    """Until `condition()` holds; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def short_home() -> Path:
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer than that.
    return Path(tempfile.mkdtemp(prefix="mc-", dir="/tmp"))

"""Gateway unit-test fixtures: real upstream servers, a real gateway server, captured logs."""

import json
import logging
import os
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from gateway import create_app
from gateway.accesslog import JsonLineFormatter

from .upstream import Upstream


def write_routes(path, facilities: dict[str, tuple[str, str]]) -> None:
    """Replace routes.json atomically, as the provisioner does: {slug: (upstream, state)}."""
    document = {
        "version": 1,
        "facilities": {s: {"upstream": u, "state": st} for s, (u, st) in facilities.items()},
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(document, f)
    os.replace(tmp, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def upstream_servers():
    servers = {name: Upstream(name).start() for name in ("a", "b")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def upstreams(upstream_servers):
    """Two facility stand-ins, "a" and "b", each answering with its own name; history cleared."""
    for server in upstream_servers.values():
        server.seen.clear()
        server.peers.clear()
    return upstream_servers


def standard_routes(upstreams) -> dict[str, tuple[str, str]]:
    return {
        "a": (upstreams["a"].origin, "running"),
        "b": (upstreams["b"].origin, "running"),
        "resting": (upstreams["a"].origin, "stopped"),
        "dead": (f"http://127.0.0.1:{free_port()}", "running"),
    }


@pytest.fixture(scope="session")
def standard_routes_path(tmp_path_factory, upstream_servers):
    path = tmp_path_factory.mktemp("gateway") / "routes.json"
    write_routes(path, standard_routes(upstream_servers))
    return path


class RunningGateway:
    """The gateway app served by a threaded werkzeug server on a loopback port."""

    def __init__(self, app):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gateway_settings(routes_path, **config) -> dict:
    settings = {"ROUTES_FILE": str(routes_path), "ROUTES_REFRESH": 0.05, "READ_TIMEOUT": 1.0}
    settings.update(config)
    return settings


@pytest.fixture(scope="session")
def shared_gateway(standard_routes_path):
    gateway = RunningGateway(create_app(gateway_settings(standard_routes_path)))
    yield gateway
    gateway.stop()


@pytest.fixture
def gateway(shared_gateway, upstreams):
    """A gateway routing a, b (running), resting (stopped) and dead (nothing listening)."""
    return shared_gateway


@pytest.fixture
def make_gateway(standard_routes_path, upstreams):
    """Start a gateway with extra settings (e.g. MAX_BODY, DOMAIN, ROUTES_FILE) for one test."""
    running = []

    def start(**config) -> RunningGateway:
        gateway = RunningGateway(create_app(gateway_settings(standard_routes_path, **config)))
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


class CapturedLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonLineFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self, at_least: int = 1, within: float = 2.0) -> list[dict]:
        """The parsed lines, after waiting for `at_least` of them: a request is logged when its
        response closes, which can be just after the client has read it."""
        deadline = time.monotonic() + within
        while len(self.lines) < at_least and time.monotonic() < deadline:
            time.sleep(0.01)
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def gateway_log():
    """Every line the gateway logs during the test, formatted exactly as it would be written."""
    handler = CapturedLog()
    logger = logging.getLogger("medcell.gateway")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)

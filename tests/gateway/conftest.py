"""Gateway test fixtures: the real `python -m gateway serve` (nginx + activator) on loopback, over
TLS with a throwaway certificate, in front of real HTTP servers on unix sockets."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devsupport import free_port

from .upstream import FakeSupervisor, UnixServer

ROOT = Path(__file__).resolve().parents[2]


def write_routes(path: Path, facilities: dict[str, str], generation: int) -> None:
    """Replace routes.json atomically, as the provisioner does: {slug: state}."""
    document = {
        "version": 2,
        "generation": generation,
        "facilities": {slug: {"state": state} for slug, state in facilities.items()},
    }
    tmp = path.with_name("routes.json.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def make_tls_files(config_dir: Path) -> None:
    """A throwaway self-signed certificate, made the way an operator would with openssl."""
    tls = config_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"),
            "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True, capture_output=True,
    )  # fmt: skip


STANDARD_ROUTES = {
    "a": "running",
    "b": "running",
    "resting": "stopped",
    "dead": "running",  # nothing listens on its socket
    "sleepy": "asleep",  # the fake supervisor wakes it
    "gone": "asleep",  # the supervisor says it does not exist
    "halted": "asleep",  # the supervisor says the operator stopped it
    "broken": "asleep",  # the supervisor says its wake failed
}


class Gateway:
    """`python -m gateway serve` with its own directories, ports and log file."""

    def __init__(self, base: Path, **env: str):
        self.base = base
        self.config = base / "cfg"
        self.run = base / "run"
        # Short: unix socket paths are limited to 107 bytes.
        self.state = Path(tempfile.mkdtemp(prefix="mcgw-"))
        self.port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log_path = base / "gateway.log"
        self.env = {
            **os.environ,
            "MEDCELL_GATEWAY_CONFIG": str(self.config),
            "MEDCELL_GATEWAY_RUN_DIR": str(self.run),
            "MEDCELL_GATEWAY_STATE_DIR": str(self.state),
            "MEDCELL_GATEWAY_HTTPS_BIND": f"127.0.0.1:{self.port}",
            "MEDCELL_GATEWAY_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "MEDCELL_GATEWAY_PORT": str(self.port),
            "MEDCELL_GATEWAY_TIMEOUT": "1",
            "MEDCELL_GATEWAY_WORKERS": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def routes(self) -> Path:
        return self.config / "routes.json"

    @property
    def cert(self) -> str:
        return str(self.config / "tls" / "cert.pem")

    def socket_of(self, slug: str) -> str:
        return str(self.run / "facilities" / slug / "app.sock")

    def applied(self) -> int | None:
        try:
            return json.loads((self.run / "gateway" / "applied.json").read_text())["generation"]
        except (OSError, ValueError):
            return None

    def wait_applied(self, generation: int, within: float = 10) -> float:
        started = time.monotonic()
        while self.applied() != generation:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() - started < within, f"generation {generation} not applied"
            time.sleep(0.02)
        return time.monotonic() - started

    def start(self, generation: int) -> "Gateway":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_applied(generation)
        return self

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.state, ignore_errors=True)
        return code


def prepare(base: Path) -> Gateway:
    gateway = Gateway(base)
    make_tls_files(gateway.config)
    return gateway


@pytest.fixture(scope="session")
def gateway_home(tmp_path_factory) -> Path:
    # Unix socket paths are limited to 107 bytes: keep the base short.
    return tmp_path_factory.mktemp("gw")


@pytest.fixture(scope="session")
def shared_gateway(gateway_home):
    gateway = prepare(gateway_home)
    servers = {slug: UnixServer(slug, gateway.socket_of(slug)).start() for slug in ("a", "b")}
    servers["sleepy"] = UnixServer("sleepy", gateway.socket_of("sleepy")).start()
    supervisor = FakeSupervisor(str(gateway.run / "supervisor" / "wake.sock")).start()
    supervisor.answer("sleepy", 200)
    supervisor.answer("halted", 409, "facility_stopped")
    supervisor.answer("broken", 503, "wake_failed")
    write_routes(gateway.routes, STANDARD_ROUTES, generation=1)
    gateway.start(generation=1)
    gateway.upstreams, gateway.supervisor = servers, supervisor
    os.environ["REQUESTS_CA_BUNDLE"] = gateway.cert  # requests then checks the test certificate
    yield gateway
    gateway.stop()
    for server in [*servers.values(), supervisor]:
        server.stop()


@pytest.fixture
def gateway(shared_gateway):
    """A gateway routing a, b (running), resting (stopped), dead (nothing listening), sleepy etc."""
    for server in [*shared_gateway.upstreams.values(), shared_gateway.supervisor]:
        server.seen.clear()
    return shared_gateway


@pytest.fixture
def upstreams(gateway):
    return gateway.upstreams


@pytest.fixture
def make_gateway(tmp_path, shared_gateway):
    """Start another gateway with extra environment (say MEDCELL_GATEWAY_MAX_BODY) for one test,
    in front of the shared facilities' sockets."""
    running = []

    def start(routes: dict[str, str] | None = None, **env: str) -> Gateway:
        gateway = Gateway(tmp_path, **env)
        gateway.config = shared_gateway.config.parent / f"cfg-{len(running)}-{tmp_path.name[-8:]}"
        shutil.copytree(shared_gateway.config / "tls", gateway.config / "tls")
        gateway.env["MEDCELL_GATEWAY_CONFIG"] = str(gateway.config)
        gateway.run = shared_gateway.run  # same facility sockets
        gateway.env["MEDCELL_GATEWAY_RUN_DIR"] = str(gateway.run)
        write_routes(gateway.routes, routes or {"a": "running", "b": "running"}, generation=1)
        gateway.upstreams = shared_gateway.upstreams
        # applied.json is shared with the session's gateway: wait on nginx instead.
        gateway.wait_applied = lambda generation, within=10: _wait_port(gateway, within)
        running.append(gateway.start(generation=1))
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


def _wait_port(gateway: Gateway, within: float) -> float:
    started = time.monotonic()
    while True:
        assert gateway.process.poll() is None, gateway.log_path.read_text()[-3000:]
        try:
            socket.create_connection(("127.0.0.1", gateway.port), timeout=0.2).close()
            return time.monotonic() - started
        except OSError:
            assert time.monotonic() - started < within, "gateway did not start"
            time.sleep(0.05)


class GatewayLog:
    """The lines the gateway writes from the moment the fixture starts."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.start = len(gateway.log_lines())

    @property
    def lines(self) -> list[str]:
        return self.gateway.log_lines()[self.start :]

    def records(self, at_least: int = 1, within: float = 2.0, event: str | None = None):
        deadline = time.monotonic() + within
        while True:
            records = [json.loads(line) for line in self.lines]
            if event:
                records = [r for r in records if r.get("event") == event]
            if len(records) >= at_least or time.monotonic() > deadline:
                return records
            time.sleep(0.02)


@pytest.fixture
def gateway_log(gateway):
    return GatewayLog(gateway)

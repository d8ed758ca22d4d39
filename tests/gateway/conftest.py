"""Gateway test fixtures: the real `python -m gateway serve` (nginx + activator) on loopback, over
TLS with a throwaway certificate, in front of real HTTP servers on unix sockets."""

import json
import shutil
import time
from pathlib import Path

import pytest

from devsupport import FacilityServer
from devsupport.gateway import GatewayServer as Gateway
from devsupport.gateway import write_routes

from .upstream import FakeSupervisor, UnixServer

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


FACILITY_SLUG = "fuzzed"
# Quick to give up on a facility, and one nginx worker: what the tests expect.
TEST_ENV = {"MEDCELL_GATEWAY_TIMEOUT": "1", "MEDCELL_GATEWAY_WORKERS": "1"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of the shared gateway (or of one beside it) runs nginx and the activator: it is in
    the `process` tier, whichever module it is in."""
    for item in items:
        if "shared_gateway" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)


def prepare(base: Path) -> Gateway:
    gateway = Gateway(base, **TEST_ENV)
    gateway.make_tls_files()
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
    yield gateway
    gateway.stop()
    for server in [*servers.values(), supervisor]:
        server.stop()


@pytest.fixture(autouse=True)
def trust_the_test_certificate(request, monkeypatch):
    """While a test of the shared gateway (or of one started beside it, with the same certificate)
    runs, requests checks that certificate; tests of other gateways pass theirs as `verify`, and
    no test outside this folder sees it."""
    if "shared_gateway" in request.fixturenames:
        cert = request.getfixturevalue("shared_gateway").cert
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)


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
        config = shared_gateway.config.parent / f"cfg-{len(running)}-{tmp_path.name[-8:]}"
        shutil.copytree(shared_gateway.config / "tls", config / "tls")
        # The same facility sockets as the session's gateway.
        gateway = Gateway(tmp_path, config=config, run=shared_gateway.run, **{**TEST_ENV, **env})
        write_routes(gateway.routes, routes or {"a": "running", "b": "running"}, generation=1)
        gateway.upstreams = shared_gateway.upstreams
        # applied.json is shared with the session's gateway: wait for its own start instead.
        gateway.launch()
        running.append(gateway)
        gateway.wait_started()
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def facility_behind_gateway(tmp_path):
    """The facility's real server on its socket (slug `fuzzed`, its admin login in
    `.admin`), and a gateway of its own routing to it at its own origin."""
    gateway = Gateway(tmp_path, MEDCELL_GATEWAY_WORKERS="1")
    gateway.make_tls_files()
    write_routes(gateway.routes, {FACILITY_SLUG: "running"}, generation=1)
    socket = tmp_path / "run" / "facilities" / FACILITY_SLUG / "app.sock"
    public_url = f"{gateway.origin(FACILITY_SLUG)}/"
    server = FacilityServer(tmp_path, FACILITY_SLUG, socket=socket, MEDCELL_PUBLIC_URL=public_url)
    server.create_admin()
    server.start()
    gateway.start(generation=1)
    yield server, gateway
    gateway.stop()
    server.stop()


class GatewayLog:
    """The lines the gateway writes from the moment the fixture starts."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.start = len(gateway.log_lines())

    @property
    def lines(self) -> list[str]:
        return self.gateway.log_lines()[self.start :]

    def records(self, at_least: int = 1, within: float = 10.0, event: str | None = None):
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

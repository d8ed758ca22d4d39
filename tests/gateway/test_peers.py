"""Cluster routing: every node's gateway serves every facility. Two real gateways (nginx and the
activator each) on their own loopback addresses, with node certificates from a real cluster CA:
node A forwards a remote facility's requests to node B's peer listener over mutual TLS; B serves
its own facilities there exactly as on its public listener, and nothing else."""

import hashlib
import http.client
import os
import random
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devsupport import GatewayServer, eventually
from medcell_common.interfaces import GATEWAY_PEER_PORT, GATEWAY_REQUESTS_FILE
from provisioner.host import cluster_ca
from provisioner.supervisor.metrics import GatewayRequests

from .rawhttp import client_at
from .upstream import FakeSupervisor, UnixServer

pytestmark = pytest.mark.process

MIB = 1024 * 1024
# A facility upload route: the gateways stream its body (every other body is read whole).
UPLOAD = "/api/v1/conversations/1/attachments"
CLIENT = "127.0.0.7"  # the patient's address, distinct from the gateways' own
# One worker each; quick enough to give up on a connection that never answers.
NODE_ENV = {
    "MEDCELL_GATEWAY_WORKERS": "1",
    "MEDCELL_GATEWAY_TIMEOUT": "20",
    "MEDCELL_GATEWAY_CONNECT_TIMEOUT": "3",
}


def peer_address() -> str:
    """A loopback address whose GATEWAY_PEER_PORT is free: each node's gateway has its own, as
    hosts of a cluster do, and they reach each other on the one peer port."""
    rng = random.Random()
    for _ in range(100):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        with socket.socket() as s:
            try:
                s.bind((address, GATEWAY_PEER_PORT))
            except OSError:
                continue
        return address
    raise RuntimeError("no loopback address with a free peer port")


def remote(address: str, node: str = "node-b") -> dict:
    return {"state": "remote", "node": node, "address": address}


@dataclass
class Cluster:
    """A cluster CA with a node certificate per name, and a foreign CA's node certificate."""

    base: Path

    def tls(self, node: str) -> Path:
        """The node's cluster directory (ca.crt, node.crt, node.key), issued on first use."""
        home = self.base / node
        if not (home / "cluster" / "node.crt").exists():
            cluster_ca.install(home, cluster_ca.issue(self.base / "ca", node))
        return home / "cluster"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    base = tmp_path_factory.mktemp("cluster")
    cluster_ca.create_ca(base / "ca")
    return Cluster(base)


@pytest.fixture(scope="module")
def foreign_tls(tmp_path_factory) -> Path:
    """A node certificate from another cluster's CA."""
    base = tmp_path_factory.mktemp("foreign")
    cluster_ca.create_ca(base / "ca")
    cluster_ca.install(base / "intruder", cluster_ca.issue(base / "ca", "intruder"))
    return base / "intruder" / "cluster"


def start_node(base: Path, tls: Path, routes: dict, **env: str) -> GatewayServer:
    address = peer_address()
    gateway = GatewayServer(
        base,
        MEDCELL_GATEWAY_CLUSTER_TLS=str(tls),
        MEDCELL_GATEWAY_PEER_BIND=f"{address}:{GATEWAY_PEER_PORT}",
        **{**NODE_ENV, **env},
    )
    gateway.address = address
    gateway.make_tls_files()
    gateway.write_routes(routes, generation=1)
    gateway.start(generation=1)
    return gateway


@pytest.fixture(scope="module")
def node_b(tmp_path_factory, cluster):
    """Node B: `far` awake, `dozy` asleep (its supervisor wakes it), `resting` stopped; `loop`
    lives on node A."""
    base = tmp_path_factory.mktemp("b")
    run = base / "run"
    servers = {
        slug: UnixServer(slug, str(run / "facilities" / slug / "app.sock")).start()
        for slug in ("far", "dozy")
    }
    supervisor = FakeSupervisor(str(run / "supervisor" / "wake.sock"), delay=0.1).start()
    supervisor.answer("dozy", 200)
    # A's address is not known yet: B gets its routes for `loop` once A runs (node_a).
    routes = {"far": "running", "dozy": "asleep", "resting": "stopped"}
    gateway = start_node(base, cluster.tls("node-b"), routes)
    gateway.upstreams, gateway.supervisor = servers, supervisor
    yield gateway
    gateway.stop()
    for server in [*servers.values(), supervisor]:
        server.stop()


@pytest.fixture(scope="module")
def node_a(tmp_path_factory, cluster, node_b):
    """Node A: `near` awake here; `far`, `dozy` and `resting` on node B."""
    base = tmp_path_factory.mktemp("a")
    near = UnixServer("near", str(base / "run" / "facilities" / "near" / "app.sock")).start()
    loop = UnixServer("loop", str(base / "run" / "facilities" / "loop" / "app.sock")).start()
    on_b = remote(node_b.address)
    routes = {"near": "running", "loop": "running", "far": on_b, "dozy": on_b, "resting": on_b}
    # Logins at 1/s with a burst of 10 per client: a few quick ones are enough to reach the limit.
    gateway = start_node(base, cluster.tls("node-a"), routes, MEDCELL_GATEWAY_LOGIN_RATE="1")
    gateway.upstreams, gateway.standard_routes = {"near": near, "loop": loop}, routes
    node_b.write_routes(
        {"far": "running", "dozy": "asleep", "resting": "stopped", "loop": remote(gateway.address)},
        generation=2,
    )
    node_b.wait_applied(2)
    yield gateway
    gateway.stop()
    near.stop()
    loop.stop()


@pytest.fixture
def nodes(node_a, node_b):
    for server in [*node_a.upstreams.values(), *node_b.upstreams.values(), node_b.supervisor]:
        server.seen.clear()
    return node_a, node_b


def patient(gateway: GatewayServer):
    """A client at its own address, trusting the gateway's public certificate."""
    session = client_at(CLIENT)
    session.verify = gateway.cert
    session.trust_env = False
    return session


def peer_request(
    node: GatewayServer, slug: str, tls: Path | None, path: str = "/"
) -> tuple[int, dict, bytes]:
    """A request straight to a node's peer listener, as another node's gateway sends it (with a
    node certificate from `tls`, or none); the node's own certificate is checked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # no SNI, as the gateways send none
    context.load_verify_locations(str(node_cluster_ca(node)))
    if tls is not None:
        context.load_cert_chain(str(tls / "node.crt"), str(tls / "node.key"))
    conn = http.client.HTTPSConnection(node.address, GATEWAY_PEER_PORT, timeout=10, context=context)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", f"{slug}.localhost")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def node_cluster_ca(node: GatewayServer) -> Path:
    return Path(node.env["MEDCELL_GATEWAY_CLUSTER_TLS"]) / "ca.crt"


def test_get_reaches_a_facility_on_another_node(nodes):
    node_a, node_b = nodes
    response = patient(node_a).get(f"{node_a.origin('far')}/api/v1/x?y=1")
    assert response.status_code == 200
    seen = response.json()
    assert seen["upstream"] == "far"
    assert seen["path"] == "/api/v1/x?y=1"
    # The facility sees the patient's address, not a gateway's, and what the local one sees.
    assert seen["headers"]["x-forwarded-for"] == CLIENT
    assert seen["headers"]["host"] == "facility"
    assert "x-medcell-slug" not in seen["headers"]
    assert response.headers["Strict-Transport-Security"]
    assert node_b.upstreams["far"].seen == [("GET", "/api/v1/x?y=1")]


def test_a_client_cannot_name_another_address_through_the_peer(nodes):
    node_a, _ = nodes
    claimed = {"X-Forwarded-For": "203.0.113.9"}
    response = patient(node_a).get(f"{node_a.origin('far')}/", headers=claimed)
    assert response.json()["headers"]["x-forwarded-for"] == CLIENT


def test_post_bodies_reach_a_facility_on_another_node(nodes):
    node_a, _ = nodes
    form = b"\x01" * (300 * 1024 + 7)
    response = patient(node_a).post(f"{node_a.origin('far')}/api/v1/messages", data=form)
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["body_size"] == len(form)
    assert response.json()["body_sha256"] == hashlib.sha256(form).hexdigest()


def test_a_20_mib_upload_streams_to_a_facility_on_another_node(nodes):
    node_a, _ = nodes
    block, digest = b"\xa5" * 65536, hashlib.sha256()

    def body():
        for _ in range(20 * 16):
            digest.update(block)
            yield block

    response = patient(node_a).post(f"{node_a.origin('far')}{UPLOAD}", data=body())
    assert response.status_code == 200
    assert response.json()["body_size"] == 20 * MIB
    assert response.json()["body_sha256"] == digest.hexdigest()


def test_a_20_mib_download_streams_from_a_facility_on_another_node(nodes):
    node_a, _ = nodes
    received = 0
    with patient(node_a).get(f"{node_a.origin('far')}/big/20", stream=True) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(65536):
            assert set(chunk) == {0x5A}
            received += len(chunk)
    assert received == 20 * MIB


def test_a_clients_limits_hold_for_a_facility_on_another_node(nodes):
    node_a, node_b = nodes
    client = patient(node_a)
    statuses = [client.post(f"{node_a.origin('far')}/api/v1/login").status_code for _ in range(20)]
    assert statuses[0] == 200 and 429 in statuses
    assert len(node_b.upstreams["far"].seen) == statuses.count(200) < 20


def test_a_sleeping_facility_on_another_node_wakes_through_its_own_node(nodes):
    node_a, node_b = nodes
    response = patient(node_a).get(f"{node_a.origin('dozy')}/api/v1/x")
    assert response.status_code == 200
    assert response.json()["upstream"] == "dozy"
    assert response.json()["headers"]["x-forwarded-for"] == CLIENT
    assert node_b.supervisor.seen == [("POST", "/wake/dozy")]


def test_a_stopped_facility_on_another_node_answers_as_its_node_does(nodes):
    node_a, _ = nodes
    response = patient(node_a).get(f"{node_a.origin('resting')}/")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "facility_unavailable"


def test_a_stopped_node_means_503_with_retry_after(tmp_path, cluster, node_a):
    node_c = start_node(tmp_path / "c", cluster.tls("node-c"), {"late": "running"})
    late = UnixServer("late", node_c.socket_of("late")).start()
    try:
        apply_routes(node_a, {"near": "running", "late": remote(node_c.address, "node-c")})
        assert patient(node_a).get(f"{node_a.origin('late')}/").json()["upstream"] == "late"
        node_c.stop()
        response = patient(node_a).get(f"{node_a.origin('late')}/")
        page = patient(node_a).get(f"{node_a.origin('late')}/", headers={"Accept": "text/html"})
    finally:
        node_c.stop()
        late.stop()
        restore_routes(node_a)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "facility_unavailable"
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert page.headers["Content-Type"].startswith("text/html")


def test_a_peer_without_a_certificate_from_the_cluster_ca_gets_nothing(
    tmp_path, cluster, foreign_tls, node_a
):
    # An impostor at a node's address: it trusts the cluster CA (its certificate is public) but
    # has no node certificate from it. The gateway checks the peer before sending the request.
    tls = tmp_path / "impostor-tls"
    tls.mkdir()
    (tls / "ca.crt").write_bytes((cluster.tls("node-a") / "ca.crt").read_bytes())
    for name in ("node.crt", "node.key"):
        (tls / name).write_bytes((foreign_tls / name).read_bytes())
    impostor = start_node(tmp_path / "x", tls, {"far": "running"})
    far = UnixServer("far", impostor.socket_of("far")).start()
    try:
        apply_routes(node_a, {"near": "running", "far": remote(impostor.address, "node-x")})
        response = patient(node_a).get(f"{node_a.origin('far')}/", headers={"Cookie": "s=1"})
    finally:
        impostor.stop()
        far.stop()
        restore_routes(node_a)
    assert far.seen == []
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"


class SilentNode:
    """A peer address that takes TCP connections and never says a word (a hung node)."""

    def __init__(self):
        self.address = peer_address()
        self.server = socket.create_server((self.address, GATEWAY_PEER_PORT))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                return

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


def test_a_node_that_never_answers_means_503_with_retry_after(node_a):
    # The gateway gives up after its connect timeout (the TLS handshake included) and answers
    # itself, as for a stopped node, rather than after the read timeout with a 504.
    silent = SilentNode()
    try:
        apply_routes(node_a, {"near": "running", "cut": remote(silent.address, "node-x")})
        response = patient(node_a).get(f"{node_a.origin('cut')}/")
    finally:
        silent.close()
        restore_routes(node_a)
    assert len(silent.held) == 1  # it was asked
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "facility_unavailable"


def apply_routes(node: GatewayServer, routes: dict) -> None:
    generation = (node.applied() or 0) + 1
    node.write_routes(routes, generation)
    node.wait_applied(generation)


def restore_routes(node_a: GatewayServer) -> None:
    apply_routes(node_a, node_a.standard_routes)


def test_the_peer_listener_serves_a_verified_peer(nodes, cluster):
    _, node_b = nodes
    status, _, body = peer_request(node_b, "far", cluster.tls("node-a"), "/api/v1/x")
    assert status == 200
    assert b'"upstream": "far"' in body


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
def test_the_peer_listener_refuses_a_client_that_is_no_node_of_the_cluster(nodes, foreign_tls, who):
    _, node_b = nodes
    status, _, _ = peer_request(node_b, "far", None if who == "no certificate" else foreign_tls)
    assert status == 400
    assert node_b.upstreams["far"].seen == []


def test_a_remote_facility_reached_on_the_peer_listener_is_not_forwarded_again(nodes, cluster):
    node_a, node_b = nodes
    # B's routes place `loop` on A; A serves it (its public listener forwards nothing here).
    status, headers, _ = peer_request(node_b, "loop", cluster.tls("node-a"))
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert node_a.upstreams["loop"].seen == []


# A node cut off while this gateway keeps a connection to it open: the request sent on that
# connection gets no answer at all. It waits the peer timeout, not the (long) read timeout.
PEER_TIMEOUT = 2


@pytest.fixture(scope="module")
def kept(tmp_path_factory, cluster):
    """Node `owner` holds `kept`; node `watcher` forwards to it, with a read timeout far longer
    than its peer timeout."""
    base = tmp_path_factory.mktemp("kept")
    owner = start_node(base / "owner", cluster.tls("node-owner"), {"kept": "running"})
    facility = UnixServer("kept", owner.socket_of("kept")).start()
    routes = {"kept": remote(owner.address, "node-owner")}
    watcher = start_node(
        base / "watcher",
        cluster.tls("node-watcher"),
        routes,
        MEDCELL_GATEWAY_TIMEOUT="60",
        MEDCELL_GATEWAY_PEER_TIMEOUT=str(PEER_TIMEOUT),
    )
    yield owner, watcher
    os.killpg(owner.process.pid, signal.SIGCONT)
    watcher.stop()
    owner.stop()
    facility.stop()


def test_a_slow_reader_of_a_long_download_from_another_node_gets_all_of_it(kept):
    # The peer timeout runs between reads: a download that takes far longer goes on.
    _, watcher = kept
    received, started = 0, time.monotonic()
    with patient(watcher).get(f"{watcher.origin('kept')}/big/20", stream=True) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(MIB):
            received += len(chunk)
            time.sleep(0.25)  # a phone on a slow link: 20 MiB in ~5 s, over twice the timeout
    assert received == 20 * MIB
    assert time.monotonic() - started > 2 * PEER_TIMEOUT


def test_a_request_on_a_kept_connection_to_a_node_that_went_silent_is_503_soon(kept):
    owner, watcher = kept
    client = patient(watcher)
    assert client.get(f"{watcher.origin('kept')}/").json()["upstream"] == "kept"
    # The owner's gateway stops dead (as behind a cut link); the watcher's kept connection to it
    # stays open. Its request is answered by the watcher itself, long before its read timeout
    # (60 s, past the client's own 30 s).
    os.killpg(owner.process.pid, signal.SIGSTOP)
    try:
        response = client.get(f"{watcher.origin('kept')}/", timeout=30)
        again = client.get(f"{watcher.origin('kept')}/api/v1/x", timeout=30)
    finally:
        os.killpg(owner.process.pid, signal.SIGCONT)
    for answer in (response, again):
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "facility_unavailable"
    # Back: served again.
    assert client.get(f"{watcher.origin('kept')}/").json()["upstream"] == "kept"


def test_an_answer_from_another_node_carries_each_security_header_once(nodes):
    # The peer's gateway and the forwarding one both add the headers; the browser must get what a
    # facility on this node gets: the gateway's policy once, the facility's own beside it.
    node_a, _ = nodes
    local = patient(node_a).get(f"{node_a.origin('near')}/csp")
    far = patient(node_a).get(f"{node_a.origin('far')}/csp")
    assert local.status_code == far.status_code == 200
    policies = far.raw.headers.getlist("Content-Security-Policy")
    assert len(policies) == len(set(policies)) == 2, policies
    stopped = patient(node_a).get(f"{node_a.origin('resting')}/")
    assert stopped.status_code == 503
    for name in (
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "X-Frame-Options",
        "Cache-Control",
        "Vary",
    ):
        assert far.raw.headers.getlist(name) == local.raw.headers.getlist(name), name
        assert len(stopped.raw.headers.getlist(name)) == 1, (name, stopped.headers)


def test_a_forwarded_request_is_counted_once_by_the_node_it_reached_first(tmp_path, cluster):
    # Node A's gateway counts what its clients asked; node B's peer listener counts nothing, so
    # that the cluster's medcell_gateway_requests_total has each request once.
    run_b = tmp_path / "b" / "run"
    far = UnixServer("far", str(run_b / "facilities" / "far" / "app.sock")).start()
    node_b = start_node(tmp_path / "b", cluster.tls("node-b"), {"far": "running"})
    node_a = start_node(tmp_path / "a", cluster.tls("node-a"), {"far": remote(node_b.address)})
    try:
        for _ in range(3):
            assert patient(node_a).get(f"{node_a.origin('far')}/api/v1/x").status_code == 200
        # Then one request of B's own clients: once B counted it, B counted all it ever will.
        assert patient(node_b).get(f"{node_b.origin('far')}/api/v1/x").status_code == 200
        counts_a = GatewayRequests(node_a.run / "gateway" / GATEWAY_REQUESTS_FILE)
        counts_b = GatewayRequests(node_b.run / "gateway" / GATEWAY_REQUESTS_FILE)

        def api_200(source: GatewayRequests) -> int:
            read = source.read()
            return 0 if read is None else read[0].get(("api", "200"), 0)

        assert eventually(lambda: api_200(counts_a), lambda n: n >= 3) == 3
        assert eventually(lambda: api_200(counts_b), lambda n: n >= 1) == 1
    finally:
        node_a.stop()
        node_b.stop()
        far.stop()

"""Faults the gateway must survive, with the real facility app behind the real nginx: its routes
file truncated or invalid, the whole gateway killed with SIGKILL in the middle of a stream, and
clients that trickle their request bodies.

What a user would check: the client sees an error rather than a success, nothing is stored half
(no attachment, no message, no chunk), the database stays `integrity_check ok`, the facility is
not left counting a request that no longer exists, and everything works again once it is back.
"""

import json
import socket
import sqlite3
import ssl
import time
from pathlib import Path

import pytest
import requests

from devsupport import FacilityServer, eventually, localhost, unix_get
from devsupport.gateway import GatewayServer, write_routes

from .rawhttp import SlowBody
from .upstream import UnixServer

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SLUG = "praxis"


class Facility(FacilityServer):
    """The facility's server as its image starts it, on the socket the gateway routes to."""

    def __init__(self, base: Path, run: Path):
        socket = run / "facilities" / SLUG / "app.sock"
        super().__init__(base, SLUG, socket=socket, tcp=False, log=base / "facility.log")
        self.create_admin()

    def status(self) -> dict:
        """The socket-only status: requests in flight, among others."""
        return json.loads(unix_get(self.socket, "/_medcell/status")[1])

    def db(self, query: str) -> list[tuple]:
        """A query on the database file itself, read-only, beside the running app."""
        conn = sqlite3.connect(f"file:{self.data / 'facility.db'}?mode=ro", uri=True)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()

    def stored(self) -> dict[str, int]:
        tables = ("messages", "attachments", "attachment_chunks")
        return {t: self.db(f"SELECT count(*) FROM {t}")[0][0] for t in tables}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A running facility and the directories a gateway in front of it uses."""
    base = tmp_path_factory.mktemp("gwf")
    run = base / "run"
    facility = Facility(base / "fac", run)
    facility.start()
    # A stopped facility in the table: its 503 (not 404) shows the old table is still in force.
    config = base / "cfg"
    yield facility, config, run, base
    facility.stop()


@pytest.fixture
def gateway(site):
    facility, config, run, base = site
    gateway = GatewayServer(base, config=config, run=run, MEDCELL_GATEWAY_TIMEOUT="30")
    if not (config / "tls" / "cert.pem").exists():
        gateway.make_tls_files()
    generation = int(time.time() * 1000)
    gateway.write_routes({SLUG: "running", "resting": "stopped"}, generation)
    gateway.start(generation)
    gateway.generation = generation
    yield gateway
    gateway.stop()


def relaunch(gateway: GatewayServer) -> GatewayServer:
    """A new gateway on the same routes and sockets, as Docker's restart would bring back."""
    base = gateway.base / f"again-{time.monotonic_ns()}"
    base.mkdir()
    again = GatewayServer(base, config=gateway.config, run=gateway.run)
    again.launch()
    again.wait_started()  # applied.json still names the generation: it cannot tell
    return again


def session_for(gateway: GatewayServer) -> requests.Session:
    return localhost.session(verify=gateway.cert)


def staff(gateway: GatewayServer, facility: Facility) -> tuple[requests.Session, dict, str]:
    """A logged-in session, its auth header and a new conversation's API base."""
    session = session_for(gateway)
    base = f"{gateway.origin(SLUG)}/api/v1"
    credentials = {"username": facility.admin["username"], "password": facility.admin["password"]}
    token = session.post(f"{base}/login", json=credentials, timeout=30).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    cid = session.post(f"{base}/conversations", json={}, headers=auth, timeout=30).json()["id"]
    return session, auth, f"{base}/conversations/{cid}"


def tls_connection(gateway: GatewayServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=gateway.cert)
    # The chain is checked; OpenSSL refuses the name *.localhost (one label) by its own rule.
    context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    return context.wrap_socket(raw, server_hostname=f"{SLUG}.localhost")


def answer_after_kill(conn: ssl.SSLSocket) -> bytes:
    """Whatever the client still receives once the gateway is gone (b"" if the connection just
    ended); a reset counts as nothing received."""
    received = b""
    try:
        while chunk := conn.recv(65536):
            received += chunk
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass
    return received


def send_half_then_kill(
    gateway: GatewayServer,
    facility: Facility,
    target: str,
    headers: dict,
    body: bytes,
    streamed: bool = True,
) -> bytes:
    """Send the head and half the body, wait until the facility is handling it (an upload, which
    the gateway streams) or not (any other body, which it reads whole first), SIGKILL the
    gateway; return what the client received afterwards."""
    conn = tls_connection(gateway)
    host = f"{SLUG}.localhost:{gateway.port}"
    head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    conn.sendall(head.encode() + b"\r\n" + body[: len(body) // 2])
    if streamed:
        inflight = eventually(lambda: facility.status()["inflight"], lambda n: n >= 1, timeout=15)
        assert inflight >= 1, "the request never reached the facility"
    else:
        # Half a body at the facility would stay in flight until the kill.
        inflight = eventually(lambda: facility.status()["inflight"], lambda n: n == 0, timeout=3)
        assert inflight == 0, "half a body reached the facility"
    gateway.kill()
    received = answer_after_kill(conn)
    conn.close()
    return received


def settled(facility: Facility) -> int:
    """Requests the facility still counts in flight, once it has had time to notice."""
    return eventually(lambda: facility.status()["inflight"], lambda n: n == 0, timeout=30)


def test_upload_cut_off_by_a_killed_gateway_stores_nothing(site, gateway):
    facility = site[0]
    session, auth, conversation = staff(gateway, facility)
    before = facility.stored()
    boundary = "medcellfaultboundary"
    content = b"%PDF-1.4\n" + b"\x5a" * (8 * MIB)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    target = conversation.removeprefix(gateway.origin(SLUG)) + "/attachments"
    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}

    received = send_half_then_kill(gateway, facility, target, headers, body)

    assert not received.startswith(b"HTTP/1.1 2"), "a cut-off upload must not look accepted"
    assert settled(facility) == 0
    assert facility.stored() == before
    assert facility.db("PRAGMA integrity_check") == [("ok",)]

    # Back up: the same upload, sent whole, is stored once and reads back intact.
    again = relaunch(gateway)
    try:
        session = session_for(again)
        url = conversation.replace(gateway.origin(SLUG), again.origin(SLUG))
        sent = session.post(
            f"{url}/attachments", headers=auth, timeout=60,
            files={"file": ("scan.pdf", content, "application/pdf")},
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
        listed = session.get(f"{url}/messages", headers=auth, timeout=30).json()["messages"]
        assert [len(m["attachments"]) for m in listed] == [1]
        download = session.get(
            f"{again.origin(SLUG)}/api/v1/attachments/{sent.json()['id']}", headers=auth
        )
        assert download.content == content
    finally:
        again.stop()


def test_message_cut_off_by_a_killed_gateway_stores_nothing(site, gateway):
    facility = site[0]
    _, auth, conversation = staff(gateway, facility)
    before = facility.stored()
    body = json.dumps({"body": "Blutdruck morgens 135/85, abends 128/80. " * 200}).encode()
    target = conversation.removeprefix(gateway.origin(SLUG)) + "/messages"
    headers = {**auth, "Content-Type": "application/json"}

    received = send_half_then_kill(gateway, facility, target, headers, body, streamed=False)

    assert not received.startswith(b"HTTP/1.1 2")
    assert settled(facility) == 0
    assert facility.stored() == before
    assert facility.db("PRAGMA integrity_check") == [("ok",)]


def test_download_cut_off_by_a_killed_gateway_fails_for_the_client(site, gateway):
    facility = site[0]
    session, auth, conversation = staff(gateway, facility)
    content = b"%PDF-1.4\n" + bytes(range(256)) * (64 * 1024)  # 16 MiB
    sent = session.post(
        f"{conversation}/attachments", headers=auth, timeout=60,
        files={"file": ("befund.pdf", content, "application/pdf")},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    before = facility.stored()
    url = f"{gateway.origin(SLUG)}/api/v1/attachments/{sent.json()['id']}"

    got = 0
    with pytest.raises(requests.RequestException):
        with session.get(url, headers=auth, stream=True, timeout=30) as download:
            assert download.status_code == 200
            for chunk in download.iter_content(64 * 1024):
                got += len(chunk)
                if got >= MIB and gateway.process.poll() is None:
                    gateway.kill()
    assert got < len(content)  # the client can tell: it did not get the whole file
    # The facility stopped counting the download it could no longer write: it may sleep again.
    assert settled(facility) == 0
    assert facility.stored() == before
    assert facility.db("PRAGMA integrity_check") == [("ok",)]


BROKEN_FILES = {
    "truncated": b'{"version": 2, "generation": 99, "facilities": {"praxis": {"sta',
    "empty": b"",
    "not UTF-8": b'\xff\xfe{"version": 2, "generation": 99}',
    "nested without end": b"[" * 100_000,
    "malformed entry": json.dumps(
        {"version": 2, "generation": 99, "facilities": {"praxis": {"state": "gone"}}}
    ).encode(),
    "other version": b'{"version": 3, "generation": 99, "facilities": {}}',
}


def unusable_events(gateway: GatewayServer) -> int:
    return sum('"routes_unusable"' in line for line in gateway.log_lines())


def test_broken_routes_files_keep_the_old_table_until_a_good_one_comes(site, gateway):
    stand_in = UnixServer("resting", str(gateway.run / "facilities" / "resting" / "app.sock"))
    stand_in.start()
    try:
        for name, content in BROKEN_FILES.items():
            seen = unusable_events(gateway)
            # Written in place, not renamed: what an editor or a crash half-way leaves behind.
            with open(gateway.routes, "wb") as f:
                f.write(content)
            logged = eventually(lambda: unusable_events(gateway), lambda n: n > seen, timeout=10)  # noqa: B023
            assert logged > seen, f"{name}: no routes_unusable logged"
            assert gateway.process.poll() is None, f"{name}: the gateway exited"
            health = localhost.get(f"{gateway.origin(SLUG)}/healthz", verify=gateway.cert)
            assert health.status_code == 200, name
            resting = localhost.get(f"{gateway.origin('resting')}/healthz", verify=gateway.cert)
            assert resting.status_code == 503, name  # still the old table: stopped, not unknown
            assert gateway.applied() == gateway.generation, name

        # The next good file is applied and acknowledged.
        generation = gateway.generation + 1
        write_routes(gateway.routes, {SLUG: "running", "resting": "running"}, generation)
        gateway.wait_applied(generation)
        resting = localhost.get(f"{gateway.origin('resting')}/healthz", verify=gateway.cert)
        assert resting.status_code == 200
        assert localhost.get(f"{gateway.origin(SLUG)}/healthz", verify=gateway.cert).ok
    finally:
        stand_in.stop()


def test_trickled_login_bodies_leave_the_real_facility_answering(site, gateway):
    facility = site[0]
    # More than the facility's server has threads (services/facility/server.py: 4).
    host = f"{SLUG}.localhost"  # the facility's own origin, as a browser addresses it
    trickling = [SlowBody(gateway.port, "/api/v1/login", 4096, host=host) for _ in range(12)]
    try:
        session = session_for(gateway)
        health = session.get(f"{gateway.origin(SLUG)}/healthz", timeout=8)
        assert health.status_code == 200
        credentials = {
            "username": facility.admin["username"],
            "password": facility.admin["password"],
        }
        login = session.post(f"{gateway.origin(SLUG)}/api/v1/login", json=credentials, timeout=8)
        assert login.status_code == 200
        # A half-sent body at the facility would stay in flight while it trickles (10 s and more).
        inflight = eventually(lambda: facility.status()["inflight"], lambda n: n == 0, timeout=3)
        assert inflight == 0, "a half-sent body reached the facility"
    finally:
        for body in trickling:
            body.close()

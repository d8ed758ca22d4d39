"""The facility's server as it runs in its container: durability, draining, clean logs."""

import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from devsupport import FacilityServer, eventually, unix_get

ROOT = Path(__file__).resolve().parents[2]
MARKER = "MARKER-LOGCHECK-Jx93ke"
# Enough expired conversations that deleting them takes the server a noticeable while.
EXPIRED = 1500


def facility_server(tmp_path: Path, slug: str, **bind) -> FacilityServer:
    """The facility's server as its image starts it (`python -m services`), files under tmp_path."""
    return FacilityServer(tmp_path, slug, **bind)


@pytest.fixture
def server(tmp_path):
    """Start the facility's server; yields a handle that can kill and restart it."""
    s = facility_server(tmp_path, "durable")
    admin = s.create_admin()

    def token():
        r = requests.post(s.url + "/api/v1/login", json=admin)
        return {"Authorization": f"Bearer {r.json()['token']}"}

    s.token = token
    s.db = tmp_path / "data" / "facility.db"
    s.start()
    yield s
    s.stop()


@pytest.mark.process
def test_acknowledged_messages_survive_kill_9(server):
    headers = server.token()
    conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer():
        session = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                r = session.post(
                    f"{server.url}/api/v1/conversations/{conv['id']}/messages",
                    json={"body": f"message {i}"},
                    headers=headers,
                    timeout=5,
                )
            except requests.RequestException:
                return
            if r.status_code == 201:
                acknowledged.append(r.json()["id"])
            i += 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    # Killed while the writers are still at it, once many messages were acknowledged.
    eventually(lambda: len(acknowledged), lambda n: n >= 100, timeout=30)
    server.kill()
    stop.set()
    for t in threads:
        t.join()

    assert len(acknowledged) > 50
    conn = sqlite3.connect(server.db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in conn.execute("SELECT id FROM messages")}
    conn.close()
    assert set(acknowledged) <= stored

    server.start()
    listed = requests.get(
        f"{server.url}/api/v1/conversations/{conv['id']}/messages", headers=server.token()
    ).json()["messages"]
    assert {m["id"] for m in listed} >= set(acknowledged)


@pytest.mark.process
def test_logs_hold_no_content_tokens_or_ids(server):
    headers = server.token()
    conv = requests.post(
        server.url + "/api/v1/conversations", json={"title": MARKER}, headers=headers
    ).json()
    base = f"{server.url}/api/v1/conversations/{conv['id']}"
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    requests.post(base + "/messages", json={"body": MARKER}, headers=patient)
    requests.post(
        base + "/attachments",
        files={"file": (MARKER + ".pdf", b"%PDF-1.4 " + MARKER.encode())},
        headers=patient,
    )
    requests.get(base + "/messages", headers=headers)
    requests.get(f"{server.url}/p/{conv['patient_token']}", allow_redirects=False)
    requests.post(server.url + "/api/v1/login", json={"username": "admin", "password": MARKER})
    requests.delete(base, headers=patient)
    # The last request's line is written once it is answered: wait for it, not for a while.
    eventually(server.log_path.read_text, lambda log: '"method":"DELETE"' in log, timeout=10)

    log = server.log_path.read_text()
    assert '"route":"/api/v1/conversations/<conv_id>/messages"' in log
    for secret in (MARKER, conv["patient_token"], conv["id"], headers["Authorization"][7:]):
        assert secret not in log
    for line in log.splitlines():
        json.loads(line)  # every line is structured


def test_gunicorn_errors_never_quote_the_request(capfd):
    """A request that fails outside the app must not put its URI (a patient link) in the log."""
    from gunicorn.config import Config as GunicornConfig

    from medcell_common.gunicorn_log import ServerLog

    log = ServerLog(GunicornConfig())
    secret = "/p/SECRET-TOKEN-Vb93"
    try:
        raise OSError(f"broken while serving {secret}")
    except OSError:
        log.exception("Error handling request %s", secret)
    log.warning("Invalid request from ip=%s: %s", "10.0.0.1", f"GET {secret} HTTP/1.1")
    out, err = capfd.readouterr()
    assert "Error handling request (OSError)" in err and "Invalid request refused" in err
    assert "SECRET-TOKEN" not in out + err and "10.0.0.1" not in err


def get_unix(path: Path, url: str, headers: dict | None = None) -> tuple[int, dict]:
    status, body = unix_get(path, url, headers)
    return status, json.loads(body or b"null")


@pytest.mark.process
def test_the_server_serves_on_a_unix_socket_that_other_users_may_connect_to(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    sock = run / "app.sock"
    server = facility_server(tmp_path, "sockets", socket=sock, tcp=False)
    server.launch()
    try:

        def status_when_ready() -> dict | None:
            try:
                return get_unix(sock, "/_medcell/status")[1]
            except (FileNotFoundError, ConnectionRefusedError):
                return None

        # Ready once the worker's deletion job has done its first sweep.
        status = eventually(status_when_ready, lambda seen: seen is not None and not seen["busy"])
        assert status is not None and status["busy"] is False, server.log_path.read_text()

        assert get_unix(sock, "/healthz") == (200, {"status": "ok"})
        assert sock.stat().st_mode & 0o777 == 0o666
        assert get_unix(sock, "/_medcell/status", {"X-Forwarded-For": "10.0.0.1"})[0] == 404
        assert status["requests"] == 0 and isinstance(status["next_deadline"], float)
        # One process, no workers.
        pid = server.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert children == []
    finally:
        server.stop()


@pytest.mark.process
def test_sigterm_lets_a_download_in_flight_finish_and_takes_no_new_connections(server):
    import hashlib
    import os
    import signal
    import socket

    headers = server.token()
    conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
    # A PDF (uploads are typed by their bytes), far larger than the socket buffers hold.
    content = b"%PDF-1.4\n" + os.urandom(16 * 1024 * 1024)
    att = requests.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/attachments",
        files={"file": ("scan.pdf", content)},
        headers=headers,
    ).json()
    download = requests.get(
        f"{server.url}/api/v1/attachments/{att['id']}", headers=headers, stream=True
    )
    received = download.raw.read(64 * 1024)
    os.kill(server.proc.pid, signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True

    assert eventually(refused, bool, timeout=10)
    received += download.raw.read()
    assert hashlib.sha256(received).digest() == hashlib.sha256(content).digest()
    assert server.proc.wait(timeout=30) == 0
    assert '"event":"stopped"' in server.log_path.read_text()


@pytest.mark.process
def test_a_body_over_the_limit_gets_the_json_413(server):
    headers = server.token()
    conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
    response = requests.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/attachments",
        files={"file": ("big.bin", b"\0" * (25 * 1024 * 1024 + 512 * 1024))},
        headers=headers,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_waitress_errors_never_quote_the_request(capfd):
    """A response that breaks after it started is logged by waitress with its path: not here."""
    import logging

    from services.facility.server import configure_logging

    configure_logging()
    try:
        raise OSError("broken while serving /p/SECRET-TOKEN-Vb93")
    except OSError:
        logging.getLogger("waitress").exception("Exception while serving /p/SECRET-TOKEN-Vb93")
    err = capfd.readouterr().err
    assert '"event":"error handling request (OSError)"' in err
    assert "SECRET-TOKEN" not in err


def upload_head(server, headers: dict, conv_id: str, size: int, boundary: str) -> bytes:
    """The start of a raw multipart upload of `size` bytes (the server's own port)."""
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    length = len(part) + size + len(f"\r\n--{boundary}--\r\n")
    return (
        f"POST /api/v1/conversations/{conv_id}/attachments HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nAuthorization: {headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode() + part


def spooled_files(pid: int, tmpdir: Path) -> list[str]:
    """Files the process holds open that were deleted or live in its temporary directory."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.endswith("(deleted)") or target.startswith(str(tmpdir)):
            held.append(target)
    return held


@pytest.fixture
def spool_server(tmp_path):
    """The facility's server with its own TMPDIR, where a spooling server would put bodies."""
    s = FacilityServer(tmp_path, "streams", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    s.admin_login = s.create_admin()
    s.start()
    yield s
    s.stop()


def login(server) -> dict:
    r = requests.post(server.url + "/api/v1/login", json=server.admin_login)
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.process
def test_an_upload_is_streamed_to_the_app_never_spooled_to_a_file(spool_server):
    server = spool_server
    headers = login(server)
    conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
    content = b"%PDF-1.4\n" + os.urandom(12 * 1024 * 1024)
    boundary = "b0undaryXq81"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(upload_head(server, headers, conv["id"], len(content), boundary))
        sock.sendall(content[: 8 * 1024 * 1024])
        # Most of the body is in, and the server keeps none of it in a file.
        status = lambda: requests.get(server.url + "/healthz").status_code  # noqa: E731
        assert eventually(status, lambda s: s == 200)
        assert spooled_files(server.proc.pid, server.root / "tmp") == []
        assert list((server.root / "tmp").iterdir()) == []
        sock.sendall(content[8 * 1024 * 1024 :] + f"\r\n--{boundary}--\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    attachment = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    stored = requests.get(f"{server.url}/api/v1/attachments/{attachment['id']}", headers=headers)
    assert stored.content == content


@pytest.mark.process
def test_an_upload_cut_off_half_way_stores_nothing_and_the_server_goes_on(spool_server):
    server = spool_server
    headers = login(server)
    conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers).json()
    content = b"%PDF-1.4\n" + os.urandom(4 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(upload_head(server, headers, conv["id"], len(content), "cutXq81"))
        sock.sendall(content[: 2 * 1024 * 1024])

    def in_flight() -> int:
        return requests.get(server.url + "/_medcell/status").json()["inflight"]

    assert eventually(in_flight, lambda n: n == 0) == 0
    messages = requests.get(
        f"{server.url}/api/v1/conversations/{conv['id']}/messages", headers=headers
    ).json()
    assert all(not m.get("attachments") for m in messages["messages"])
    again = requests.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/attachments",
        files={"file": ("scan.pdf", content)},
        headers=headers,
    )
    assert again.status_code == 201


@pytest.mark.process
def test_a_refused_body_is_read_past_and_the_connection_serves_the_next_request(spool_server):
    server = spool_server
    session = requests.Session()  # one keep-alive connection
    refused = session.post(
        f"{server.url}/api/v1/conversations/none/attachments",
        files={"file": ("scan.pdf", b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024))},
    )
    assert refused.status_code == 401
    assert session.get(server.url + "/healthz").json() == {"status": "ok"}


@pytest.mark.process
def test_a_request_whose_body_stops_coming_is_cut_off_and_frees_its_thread(tmp_path):
    server = FacilityServer(tmp_path, "stalls", MEDCELL_REQUEST_TIMEOUT="2", MEDCELL_THREADS="1")
    server.admin_login = server.create_admin()
    server.start()
    try:
        headers = login(server)
        conv = requests.post(server.url + "/api/v1/conversations", json={}, headers=headers)
        content = b"%PDF-1.4\n" + os.urandom(1024 * 1024)
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(upload_head(server, headers, conv.json()["id"], len(content), "stXq81"))
            sock.sendall(content[:300_000])  # and then nothing more
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                answer += chunk
        assert not answer.startswith(b"HTTP/1.1 201")
        # The one request thread is free again: the next request is answered.
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    timed_out = [line for line in lines if line["event"] == "request timed out"]
    assert len(timed_out) == 1
    assert set(timed_out[0]) == {"ts", "level", "event", "seconds"}  # no path, no id


def _answers(sock: Path) -> bool:
    try:
        return unix_get(sock, "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


@pytest.mark.process
def test_a_second_server_on_the_same_data_volume_waits_and_never_serves(tmp_path):
    # As on a cluster node coming back: the new task starts while the old container still runs,
    # on one data volume and one socket folder.
    sock = tmp_path / "run" / "app.sock"
    first = FacilityServer(tmp_path, "twice", socket=sock, tcp=False, log=tmp_path / "first.log")
    second = FacilityServer(tmp_path, "twice", socket=sock, tcp=False, log=tmp_path / "second.log")
    first.start()
    try:
        serving = sock.stat().st_ino
        second.launch()
        waiting = eventually(second.log_path.read_text, lambda log: "serving_lock_wait" in log)
        assert "serving_lock_wait" in waiting
        # The first one's socket is still the one there, and it answers; the second made none.
        assert sock.stat().st_ino == serving and _answers(sock)
        assert second.proc.poll() is None
        assert '"started"' not in second.log_path.read_text()

        first.stop()
        # Its lock went with it: the second takes over and serves.
        assert eventually(lambda: _answers(sock), bool)
        assert "serving_lock_taken" in second.log_path.read_text()
    finally:
        first.stop()
        second.stop()


@pytest.mark.process
def test_a_server_waiting_for_the_data_volume_stops_on_sigterm_without_serving(tmp_path):
    sock = tmp_path / "run" / "app.sock"
    first = FacilityServer(tmp_path, "twice", socket=sock, tcp=False, log=tmp_path / "first.log")
    second = FacilityServer(tmp_path, "twice", socket=sock, tcp=False, log=tmp_path / "second.log")
    first.start()
    try:
        second.launch()
        eventually(second.log_path.read_text, lambda log: "serving_lock_wait" in log)
        second.stop()
        assert second.proc.returncode == 0
        assert "serving_lock_not_taken" in second.log_path.read_text()
        assert _answers(sock)
    finally:
        first.stop()
        second.stop()


def _status_if_answering(sock: Path) -> dict | None:
    try:
        return get_unix(sock, "/_medcell/status")[1]
    except OSError:
        return None


@pytest.mark.process
def test_the_first_answer_comes_after_the_sweep_deleted_what_expired_meanwhile(tmp_path):
    # Conversations that expired while the facility slept, or while its node was cut off:
    # written on a clock eight days back, so the server finds every one of them overdue.
    from services.facility.core import open_facility
    from tests.facility.conftest import make_config

    eight_days_ago = time.time_ns() // 1000 - 8 * 86400 * 1_000_000
    facility = open_facility(make_config(tmp_path, "late"), lambda: eight_days_ago)
    conn = facility.store.conn()
    for _ in range(EXPIRED):
        conv_id, _ = facility.conversations.create(conn, None)
        facility.conversations.add_message(conn, conv_id, "patient", "a rash, since Monday")
    facility.store.close()

    sock = tmp_path / "run" / "app.sock"
    server = FacilityServer(tmp_path, "late", socket=sock, tcp=False)
    server.launch()
    try:
        first = eventually(lambda: _status_if_answering(sock), lambda s: s is not None, 60)
    finally:
        server.stop()
    # Its very first answer: the deletion job is done and nothing is overdue any more.
    assert first is not None, server.log_path.read_text()[-2000:]
    assert first["busy"] is False
    assert first["next_deadline"] > time.time()
    db = sqlite3.connect(tmp_path / "data" / "facility.db")
    assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
    db.close()

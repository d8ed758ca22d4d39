"""The facility app under gunicorn, as it runs in its container: durability and clean logs."""

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
MARKER = "MARKER-LOGCHECK-Jx93ke"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """Start gunicorn with the facility app; yields a handle that can kill and restart it."""
    port = free_port()
    env = {
        **os.environ,
        "MEDCELL_FACILITY": "durable",
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
        "MEDCELL_BIND": f"127.0.0.1:{port}",
    }
    admin = json.loads(
        subprocess.run(
            [sys.executable, "-m", "services.facility", "create-admin"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )

    class Server:
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "server.log"
        proc: subprocess.Popen | None = None

        def start(self):
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "deploy/gunicorn_facility.py",
                    "services.facility:create_app()",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=self.log.open("ab"),
                start_new_session=True,
            )
            for _ in range(100):
                try:
                    if requests.get(self.url + "/healthz", timeout=1).ok:
                        return
                except requests.ConnectionError:
                    time.sleep(0.1)
            raise RuntimeError(self.log.read_text())

        def kill9(self):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

        def token(self):
            r = requests.post(self.url + "/api/v1/login", json=admin)
            return {"Authorization": f"Bearer {r.json()['token']}"}

    s = Server()
    s.db = tmp_path / "data" / "facility.db"
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        os.killpg(s.proc.pid, signal.SIGTERM)
        s.proc.wait(timeout=20)


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
    time.sleep(1.5)
    server.kill9()
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


def test_logs_hold_no_content_tokens_or_ids(server):
    headers = server.token()
    conv = requests.post(
        server.url + "/api/v1/conversations", json={"title": MARKER}, headers=headers
    ).json()
    base = f"{server.url}/api/v1/conversations/{conv['id']}"
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    requests.post(base + "/messages", json={"body": MARKER}, headers=patient)
    requests.post(
        base + "/attachments", files={"file": (MARKER + ".txt", MARKER.encode())}, headers=patient
    )
    requests.get(base + "/messages", headers=headers)
    requests.get(f"{server.url}/p/{conv['patient_token']}", allow_redirects=False)
    requests.post(server.url + "/api/v1/login", json={"username": "admin", "password": MARKER})
    requests.delete(base, headers=patient)
    time.sleep(0.3)

    log = server.log.read_text()
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


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, as the gateway's nginx and the supervisor speak to a facility."""

    def __init__(self, path: Path, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def get_unix(path: Path, url: str, headers: dict | None = None) -> tuple[int, dict]:
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", url, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_gunicorn_serves_on_a_unix_socket_that_other_users_may_connect_to(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    sock = run / "app.sock"
    env = {
        **os.environ,
        "MEDCELL_FACILITY": "sockets",
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
        "MEDCELL_BIND": f"unix:{sock}",
    }
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn_facility.py",
            "services.facility:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )
    try:
        status = None
        for _ in range(200):
            try:
                status = get_unix(sock, "/_medcell/status")[1]
                if status["busy"] is False:  # the worker's deletion job has done its first sweep
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                pass
            time.sleep(0.05)
        assert status is not None and status["busy"] is False, log.read_text()

        assert get_unix(sock, "/healthz") == (200, {"status": "ok"})
        assert sock.stat().st_mode & 0o777 == 0o666
        assert get_unix(sock, "/_medcell/status", {"X-Forwarded-For": "10.0.0.1"})[0] == 404
        assert status["requests"] == 0 and isinstance(status["next_deadline"], float)
        # One worker by default: the master and that worker, nothing else.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)

"""Shared by the mail tests: an SMTP inbox for aiosmtpd, a real facility on its socket, and a
hostile facility whose outbox hands the relay whatever a test puts into it."""

import contextlib
import json
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import requests

from devsupport import FacilityServer
from provisioner.host.config import Config

REPO = Path(__file__).resolve().parents[2]


class Inbox:
    """aiosmtpd's handler: keeps every mail it is given, refuses recipients it is told to."""

    def __init__(self):
        self.mails: list = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@contextlib.contextmanager
def running_facility(
    home: Path, config: Config, slug: str
) -> Iterator[tuple[FacilityServer, requests.Session]]:
    """The facility's server with mail on, on its socket and a loopback port, and an
    API session logged in as its first admin."""
    socket = config.facility_socket(slug)
    socket.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "MEDCELL_FACILITY": slug,
        "MEDCELL_FACILITY_NAME": "Praxis Dr. Müller",
        "MEDCELL_DATA_DIR": str(home / "data"),
        "MEDCELL_KEY_DIR": str(home / "keys"),
        "MEDCELL_MAIL": "on",
        "MEDCELL_PUBLIC_URL": config.facility_url(slug),  # as the provisioner passes it
    }
    admin = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "services.facility", "create-admin"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    password = json.loads(admin.stdout)["password"]
    server = FacilityServer(home, slug, socket=socket, log=home / "facility.log", **env)
    server.start()
    try:
        session = requests.Session()
        session.trust_env = False
        token = session.post(
            f"{server.url}/api/v1/login", json={"username": "admin", "password": password}
        ).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        yield server, session
    finally:
        server.stop()


class HostileOutbox:
    """A facility process on its real unix socket that answers only the outbox endpoints: it
    hands over `mails` (50 at a time, or `raw` bytes verbatim) and deletes what is acknowledged."""

    def __init__(self, config: Config, slug: str):
        self.mails: list = []
        self.raw: bytes | None = None
        self.acked: list[str] = []
        path = config.facility_socket(slug)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._server = _OutboxServer(str(path), _OutboxHandler)
        self._server.outbox = self
        self._lock = threading.Lock()
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def batch(self) -> bytes:
        with self._lock:
            return self.raw or json.dumps({"mails": self.mails[:50]}).encode()

    def acknowledge(self, ids: list[str]) -> None:
        with self._lock:
            self.acked.extend(ids)
            gone = set(ids)
            self.mails = [m for m in self.mails if not (isinstance(m, dict) and m["id"] in gone)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _OutboxServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    outbox: HostileOutbox


class _OutboxHandler(BaseHTTPRequestHandler):
    server: _OutboxServer

    def do_GET(self) -> None:
        self._send(self.server.outbox.batch() if self.path == "/_medcell/outbox" else b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.outbox.acknowledge(body["ids"])
        self._send(json.dumps({"deleted": len(body["ids"])}).encode())

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args) -> None:
        pass

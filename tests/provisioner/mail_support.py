"""Shared by the mail tests: an SMTP inbox for aiosmtpd and a real facility on its socket."""

import contextlib
import json
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import requests

from devsupport import Gunicorn
from provisioner.config import Config

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
) -> Iterator[tuple[Gunicorn, requests.Session]]:
    """The facility app with mail on, under gunicorn on its socket and a loopback port, and an
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
    server = Gunicorn(
        "deploy/gunicorn_facility.py",
        "services.facility:create_app()",
        env,
        home / "facility.log",
        socket=socket,
    )
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

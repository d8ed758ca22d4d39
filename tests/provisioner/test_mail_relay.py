"""The supervisor's mail relay against a real facility (gunicorn on its unix socket) and a real
SMTP server (aiosmtpd on loopback): what arrives, what the facility still holds afterwards."""

import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from devsupport import free_port
from provisioner.host import facility_http, lifecycle, smtp
from provisioner.host.config import Config
from provisioner.host.smtp import SmtpSettings
from provisioner.supervisor.mail import MailRelay, open_smtp
from tests.provisioner.mail_support import Inbox, running_facility

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

SLUG = "praxis"
ORIGIN = "https://praxis.localhost:8443/"  # the facility's own origin, as both sides configure it
SECRET_TEXT = "Ergebnis-Blutbild-Hb-13-9"
SECRET_TITLE = "Frau-Beispiel-Knie"


@pytest.fixture
def home():
    # Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer than that.
    root = Path(tempfile.mkdtemp(prefix="mc-mail-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def config(home) -> Config:
    # The facility runs here as this test's own user, not in a container as uid 10001.
    return Config(home=home / "home", facility_uid=os.getuid())


@pytest.fixture
def facility(home, config):
    """The real facility app with mail on, on its socket (and a loopback port for the API)."""
    with running_facility(home, config, SLUG) as (server, session):
        yield server, session
    log = (home / "facility.log").read_text()
    assert SECRET_TEXT not in log and "@" not in log.replace("@gunicorn", "")


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    controller.stop()


def settings_for(controller, **extra) -> SmtpSettings:
    return SmtpSettings(
        scheme="smtp",
        host="127.0.0.1",
        port=controller.port,
        mail_from="noreply@medcell.example",
        **extra,
    )


def conversation(server, session, *, pin: str | None = None) -> tuple[str, dict]:
    body = {"title": SECRET_TITLE, **({"pin": pin} if pin else {})}
    conv = session.post(f"{server.url}/api/v1/conversations", json=body).json()
    return conv, {"Authorization": f"Bearer {conv['patient_token']}"}


def patient_writes(server, conv: dict, patient: dict) -> None:
    response = requests.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/messages",
        json={"body": SECRET_TEXT},
        headers=patient,
    )
    assert response.status_code == 201


def outbox(config) -> int:
    return facility_http.status(config, SLUG).outbox


def test_relayed_mails_arrive_content_free_and_leave_the_facility(config, facility, inbox):
    server, session = facility
    handler, controller = inbox
    smtp.save(config.home, settings_for(controller))
    session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
    conv, patient = conversation(server, session)
    patient_writes(server, conv, patient)
    assert outbox(config) == 1

    assert MailRelay(config).drain(SLUG) == 1

    ((sender, recipients, message),) = handler.mails
    assert sender == "noreply@medcell.example" and recipients == ["team@praxis.example"]
    assert message["Subject"] == (
        "Neue Nachricht bei Praxis Dr. Müller / New message at Praxis Dr. Müller"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert f"{config.facility_url(SLUG)}staff/" in body
    for secret in (SECRET_TEXT, SECRET_TITLE, conv["id"], conv["patient_token"]):
        assert secret not in message.as_string()
    assert outbox(config) == 0
    assert MailRelay(config).drain(SLUG) == 0 and len(handler.mails) == 1  # sent once only


def test_mails_wait_in_the_facility_while_the_smtp_server_is_down(config, facility):
    server, session = facility
    port = free_port()  # nothing listens there yet
    smtp.save(config.home, SmtpSettings("smtp", "127.0.0.1", port, "noreply@medcell.example"))
    conv, patient = conversation(server, session)
    requests.put(
        f"{server.url}/api/v1/conversations/{conv['id']}/notifications",
        json={"email": "pat@mail.example"},
        headers=patient,
    )
    session.post(f"{server.url}/api/v1/conversations/{conv['id']}/messages", json={"body": "x"})
    assert MailRelay(config).drain(SLUG) == 0
    assert outbox(config) == 1
    # Mail waiting: the facility is not quiet, so it is not put to sleep before the relay ran.
    assert not lifecycle._quiet(facility_http.status(config, SLUG), 0.0)

    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert MailRelay(config).drain(SLUG) == 1
    finally:
        controller.stop()
    ((_, recipients, message),) = handler.mails
    assert recipients == ["pat@mail.example"]
    assert message["Subject"] == "Praxis Dr. Müller hat geantwortet / Your practice has answered"
    assert "http" not in message.get_content()  # no link: only its hash is kept
    assert outbox(config) == 0


def test_a_refused_recipient_is_dropped_and_the_others_still_arrive(config, facility, inbox):
    server, session = facility
    handler, controller = inbox
    handler.refuse.add("gone@praxis.example")
    smtp.save(config.home, settings_for(controller))
    conv, _ = conversation(server, session, pin="2580")
    for email in ("gone@praxis.example", "pat@mail.example"):
        response = session.post(
            f"{server.url}/api/v1/conversations/{conv['id']}/link-mail",
            json={"email": email, "patient_token": conv["patient_token"]},
        )
        assert response.status_code == 202
    assert outbox(config) == 2
    assert MailRelay(config).drain(SLUG) == 1
    ((_, recipients, message),) = handler.mails
    assert recipients == ["pat@mail.example"]
    assert (
        message["Subject"] == "Ihr Zugang zu Praxis Dr. Müller / Your access to Praxis Dr. Müller"
    )
    assert f"{ORIGIN}p/{conv['patient_token']}" in message.get_content()
    assert "2580" not in message.as_string()
    assert outbox(config) == 0  # the refused one is not retried forever


def test_nothing_is_relayed_once_the_operator_switched_mail_off(config, facility, inbox):
    server, session = facility
    handler, controller = inbox
    session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
    conv, patient = conversation(server, session)
    patient_writes(server, conv, patient)
    smtp.save(config.home, None)
    assert MailRelay(config).drain(SLUG) == 0
    assert handler.mails == []


@pytest.fixture
def tls_files(home):
    cert, key = home / "smtp-cert.pem", home / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_and_login_as_the_url_asks(config, facility, tls_files):
    server, session = facility
    cert, key = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"p@ss:word")

    handler = Inbox()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        settings = smtp.parse(
            f"smtp+starttls://relay%40praxis:p%40ss%3Aword@127.0.0.1:{controller.port}",
            "noreply@medcell.example",
        )
        smtp.save(config.home, settings)
        session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
        conv, patient = conversation(server, session)
        patient_writes(server, conv, patient)
        client_tls = ssl.create_default_context(cafile=str(cert))
        relay = MailRelay(config, connect=lambda s: open_smtp(s, client_tls))
        assert relay.drain(SLUG) == 1
    finally:
        controller.stop()
    assert logins == [(b"relay@praxis", b"p@ss:word", True)]
    assert [r for _, r, _ in handler.mails] == [["team@praxis.example"]]


def test_an_untrusted_certificate_sends_nothing(config, facility, tls_files):
    server, session = facility
    cert, key = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=server_tls)
    controller.start()
    try:
        smtp.save(
            config.home,
            smtp.parse(f"smtp+starttls://127.0.0.1:{controller.port}", "noreply@medcell.example"),
        )
        session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
        conv, patient = conversation(server, session)
        patient_writes(server, conv, patient)
        assert MailRelay(config).drain(SLUG) == 0  # the system's CAs do not know this one
    finally:
        controller.stop()
    assert handler.mails == [] and outbox(config) == 1


def test_a_wrong_smtp_password_sends_nothing_and_keeps_the_mails(config, facility, tls_files):
    server, session = facility
    cert, key = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = Inbox()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=lambda *args: AuthResult(success=False, handled=False),  # 535
        auth_required=True,
    )
    controller.start()
    try:
        smtp.save(
            config.home,
            smtp.parse(
                f"smtp+starttls://relay:wrong@127.0.0.1:{controller.port}",
                "noreply@medcell.example",
            ),
        )
        session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
        conv, patient = conversation(server, session)
        patient_writes(server, conv, patient)
        client_tls = ssl.create_default_context(cafile=str(cert))
        assert MailRelay(config, connect=lambda s: open_smtp(s, client_tls)).drain(SLUG) == 0
    finally:
        controller.stop()
    assert handler.mails == [] and outbox(config) == 1


def test_smtps_speaks_tls_from_the_first_byte(config, facility, tls_files):
    server, session = facility
    cert, key = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls)
    controller.start()
    try:
        settings = smtp.parse(f"smtps://127.0.0.1:{controller.port}", "noreply@medcell.example")
        smtp.save(config.home, settings)
        session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
        conv, patient = conversation(server, session)
        patient_writes(server, conv, patient)
        client_tls = ssl.create_default_context(cafile=str(cert))
        assert MailRelay(config, connect=lambda s: open_smtp(s, client_tls)).drain(SLUG) == 1
    finally:
        controller.stop()
    assert [r for _, r, _ in handler.mails] == [["team@praxis.example"]]
    assert outbox(config) == 0


# -- link mails: the practice's own text, and a link a patient asked for again --------------

LINK_TEXT = "Guten Tag,\n{praxis} hat Ihnen eine Unterhaltung eröffnet:\n{link}\nIhre Praxis"


def test_the_practice_text_arrives_with_the_link_filled_in(config, facility, inbox):
    server, session = facility
    handler, controller = inbox
    smtp.save(config.home, settings_for(controller))
    saved = session.put(f"{server.url}/api/v1/link-mail-template", json={"text": LINK_TEXT})
    assert saved.status_code == 200
    conv, _ = conversation(server, session, pin="2580")
    sent = session.post(
        f"{server.url}/api/v1/conversations/{conv['id']}/link-mail",
        json={"email": "pat@mail.example"},  # no token: the link kept to be sent again
    )
    assert sent.status_code == 202
    assert MailRelay(config).drain(SLUG) == 1
    ((_, recipients, message),) = handler.mails
    assert recipients == ["pat@mail.example"]
    body = message.get_content().replace("\r\n", "\n")
    link = f"{ORIGIN}p/{conv['patient_token']}"
    assert body.startswith(
        f"Guten Tag,\nPraxis Dr. Müller hat Ihnen eine Unterhaltung eröffnet:\n{link}\nIhre Praxis"
    )
    assert "2580" not in message.as_string()
    assert outbox(config) == 0


def test_a_lost_link_reaches_the_patients_own_address_and_a_stranger_gets_nothing(
    config, facility, inbox
):
    server, session = facility
    handler, controller = inbox
    smtp.save(config.home, settings_for(controller))
    conv, _ = conversation(server, session, pin="2580")
    patient = requests.post(
        f"{server.url}/api/v1/patient-sessions",
        json={"token": conv["patient_token"], "pin": "2580"},
        timeout=30,
    ).json()["token"]
    requests.put(
        f"{server.url}/api/v1/conversations/{conv['id']}/notifications",
        json={"email": "pat@mail.example"},
        headers={"Authorization": f"Bearer {patient}"},
        timeout=30,
    ).raise_for_status()
    for email in ("pat@mail.example", "someone@else.example"):
        asked = requests.post(
            f"{server.url}/api/v1/link-requests", json={"email": email}, timeout=30
        )
        assert asked.status_code == 202 and asked.json() == {"status": "accepted"}
    assert MailRelay(config).drain(SLUG) == 1
    ((_, recipients, message),) = handler.mails
    assert recipients == ["pat@mail.example"]
    assert f"{ORIGIN}p/{conv['patient_token']}" in message.get_content()

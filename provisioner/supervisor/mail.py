"""The mail relay: a facility's outbox, fetched over its socket, sent by SMTP, acknowledged.

Facilities have no network, so their notification mails wait in their own database until the
supervisor's probe sees `outbox > 0` in their status. The relay then fetches up to 50 mails from
`GET /_medcell/outbox`, hands them to the operator's SMTP server over one connection, and
acknowledges the ones the server took (`POST /_medcell/outbox/ack`), whereupon the facility
deletes them. Mails pass through this process's memory only; it logs slugs and counts, never an
address or a text. A facility with mail waiting is not put to sleep (lifecycle._quiet), so its
outbox is drained first.
"""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from provisioner import facility_socket, smtp
from provisioner.config import Config
from provisioner.errors import InvalidArgument
from provisioner.facility_socket import FacilityStatus
from provisioner.smtp import SmtpSettings
from provisioner.supervisor.jobs import JobPool, QueueFull
from provisioner.supervisor.logs import event

OUTBOX, ACK = "/_medcell/outbox", "/_medcell/outbox/ack"
SOCKET_TIMEOUT = 10.0
SMTP_TIMEOUT = 30.0
MAX_BATCHES = 20  # per drain: a facility that queues faster than we send waits for the next probe


class RelayFailed(Exception):
    """The SMTP server or the facility did not take the mails this time; they stay queued."""


def open_smtp(settings: SmtpSettings, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """A logged-in connection to the operator's server, TLS as the URL's scheme asks."""
    context = context or ssl.create_default_context()
    if settings.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=SMTP_TIMEOUT, context=context
        )
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT)
    try:
        if settings.scheme == "smtp+starttls":
            server.starttls(context=context)
        if settings.username:
            server.login(settings.username, settings.password or "")
    except BaseException:
        server.close()  # a refused certificate or login must not leave the socket open
        raise
    return server


def build_message(settings: SmtpSettings, mail: dict, now: datetime) -> EmailMessage:
    """One plain-text mail; refuses (ValueError) a header that would carry a line break."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = str(mail["to"])
    message["Subject"] = str(mail["subject"])
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2])
    # Tells mail servers and vacation responders that nobody waits for an answer.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(str(mail["body"]))
    return message


class MailRelay:
    """Drains facilities' outboxes on a small pool of its own, one drain per facility at a time."""

    def __init__(
        self,
        config: Config,
        *,
        load: Callable[[Path], SmtpSettings | None] = smtp.load,
        connect: Callable[[SmtpSettings], smtplib.SMTP] = open_smtp,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_running: int = 2,
    ):
        self.config = config
        self.load, self.connect, self.clock = load, connect, clock
        self.pool = JobPool(
            lambda slug, arg: self.drain(slug),
            max_running=max_running,
            max_waiting=100_000,  # one entry per facility at most
            name="mail",
        )

    def on_status(self, slug: str, status: FacilityStatus) -> None:
        """The scheduler's hook: a probe saw mail waiting, so drain that facility soon."""
        if status.outbox:
            try:
                self.pool.submit(slug)
            except QueueFull:
                pass  # stopping; the next probe asks again

    def stop(self) -> None:
        self.pool.stop()

    def drain(self, slug: str) -> int:
        """Send what the facility has queued; returns how many the SMTP server accepted."""
        try:
            settings = self.load(self.config.home)
        except InvalidArgument:
            event("mail_failed", logging.WARNING, slug=slug, error="settings_unreadable")
            return 0
        if settings is None:
            return 0  # mail switched off since the facility queued it; it expires there
        sent = rejected = 0
        try:
            for _ in range(MAX_BATCHES):
                mails = self._fetch(slug)
                if not mails:
                    break
                delivered, refused = self._send(settings, mails)
                self._ack(slug, [m["id"] for m in mails if m["id"] in delivered | refused])
                sent, rejected = sent + len(delivered), rejected + len(refused)
                if len(delivered) + len(refused) < len(mails):
                    raise RelayFailed("smtp")
        except RelayFailed as e:
            event("mail_failed", logging.WARNING, slug=slug, error=str(e), sent=sent)
            return sent
        if sent or rejected:
            event("mail_relayed", slug=slug, sent=sent, rejected=rejected)
        return sent

    # -- the facility's side ---------------------------------------------------------------

    def _fetch(self, slug: str) -> list[dict]:
        code, body = self._call(slug, "GET", OUTBOX)
        try:
            mails = json.loads(body)["mails"]
            return [m for m in mails if isinstance(m, dict) and isinstance(m.get("id"), str)]
        except (ValueError, KeyError, TypeError) as e:
            raise RelayFailed("outbox_unreadable") from e

    def _ack(self, slug: str, ids: list[str]) -> None:
        if ids:
            self._call(slug, "POST", ACK, {"ids": ids})

    def _call(self, slug: str, method: str, target: str, body: dict | None = None):
        try:
            code, data = facility_socket.request(
                self.config, slug, target, SOCKET_TIMEOUT, method=method, body=body
            )
        except (OSError, http.client.HTTPException) as e:
            raise RelayFailed("facility_unreachable") from e
        if code != 200:
            raise RelayFailed(f"facility_http_{code}")
        return code, data

    # -- the SMTP server's side ------------------------------------------------------------

    def _send(self, settings: SmtpSettings, mails: list[dict]) -> tuple[set[str], set[str]]:
        """(ids the server accepted, ids it refused for good); stops at a temporary failure."""
        delivered: set[str] = set()
        refused: set[str] = set()
        try:
            server = self.connect(settings)
        except (OSError, smtplib.SMTPException):
            return delivered, refused
        try:
            for mail in mails:
                try:
                    message = build_message(settings, mail, self.clock())
                    server.send_message(message)
                except (ValueError, KeyError, smtplib.SMTPRecipientsRefused):
                    refused.add(mail["id"])  # a bad address or mail: retrying cannot help
                except smtplib.SMTPResponseException as e:
                    if 500 <= e.smtp_code < 600:
                        refused.add(mail["id"])
                        continue
                    break  # 4xx: try again at the next probe
                else:
                    delivered.add(mail["id"])
        except (OSError, smtplib.SMTPException):
            pass  # the connection broke: what was accepted so far is acknowledged
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
        return delivered, refused

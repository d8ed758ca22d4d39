"""The mail relay: a facility's outbox, fetched over its socket, sent by SMTP, acknowledged.

Facilities have no network, so their notifications wait in their own database until the
supervisor's probe sees `outbox > 0` in their status. The relay then fetches up to 50 from
`GET /_medcell/outbox` and treats the facility as hostile: each must pass `notifications.check`
(one plain recipient, a fixed kind, a language, a link on the facility's own origin), and the
per-facility rate limit (`mail_limit`) decides how many go now. Subject and body come from the
relay's own templates. It sends those over one SMTP connection and acknowledges
(`POST /_medcell/outbox/ack`) the ones the server took or refused for good, and the ones it
refused itself, whereupon the facility deletes them; what the limit holds back stays queued.
Mails pass through this process's memory only; it logs slugs, counts and fixed reason words,
never an address or a text. A facility with mail waiting is not put to sleep (lifecycle._quiet),
so its outbox is drained first.
"""

from __future__ import annotations

import http.client
import logging
import smtplib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from medcell_common import strictjson
from medcell_common.notifications import OUTBOX_BATCH
from provisioner.host import facility_http, smtp
from provisioner.host.config import Config
from provisioner.host.errors import InvalidArgument
from provisioner.host.facility_http import FacilityStatus
from provisioner.host.smtp import SmtpSettings
from provisioner.supervisor import notifications
from provisioner.supervisor.jobs import JobPool, QueueFull
from provisioner.supervisor.logs import event
from provisioner.supervisor.mail_limit import MailLimit
from provisioner.supervisor.notifications import Notification, Refused

OUTBOX, ACK = "/_medcell/outbox", "/_medcell/outbox/ack"
SOCKET_TIMEOUT = 10.0
SMTP_TIMEOUT = 30.0
MAX_BATCHES = 20  # per drain: a facility that queues faster than we send waits for the next probe
MAX_OUTBOX_BYTES = 256 * 1024  # 50 notifications take a few KiB each at most


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


def build_message(
    settings: SmtpSettings, notification: Notification, now: datetime
) -> EmailMessage:
    """The plain-text mail for a checked notification, in the relay's own words."""
    subject, body = notifications.render(notification)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = notification.to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2])
    # Tells mail servers and vacation responders that nobody waits for an answer.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
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
        limit_clock: Callable[[], float] = time.monotonic,
        max_running: int = 2,
    ):
        self.config = config
        self.load, self.connect, self.clock = load, connect, clock
        self.limit = MailLimit(limit_clock)
        # Content-free tallies since start: reason word -> notifications refused; held back.
        self.refused: Counter[str] = Counter()
        self.held = 0
        # Called once per failed relay attempt (the metrics' medcell_mail_failures_total).
        self.on_failure: Callable[[], None] = lambda: None
        self._tally_lock = threading.Lock()
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
        """Send what the facility has queued and the limit allows; returns how many the SMTP
        server accepted."""
        try:
            settings = self.load(self.config.home)
        except InvalidArgument:
            self.on_failure()
            event("mail_failed", logging.WARNING, slug=slug, error="settings_unreadable")
            return 0
        if settings is None:
            return 0  # mail switched off since the facility queued it; it expires there
        try:
            origin = notifications.origin_of(slug, self.config.domain, self.config.gateway_port)
        except ValueError:
            self.on_failure()
            event("mail_failed", logging.WARNING, slug=slug, error="bad_domain")
            return 0
        sent = rejected = held = 0
        refused: Counter[str] = Counter()
        try:
            for _ in range(MAX_BATCHES):
                batch = self._fetch(slug)
                if not batch:
                    break
                good, bad = self._check(batch, origin, refused)
                allowed = self.limit.take(slug, settings.rate, len(good))
                delivered, bounced = self._send(settings, good[:allowed])
                self.limit.give_back(slug, allowed - len(delivered) - len(bounced))
                self._ack(slug, [*bad, *(n.id for n in good if n.id in delivered | bounced)])
                sent, rejected = sent + len(delivered), rejected + len(bounced)
                if len(delivered) + len(bounced) < allowed:
                    raise RelayFailed("smtp")
                if allowed < len(good):
                    held = len(good) - allowed  # they wait in the outbox for the next drain
                    break
                if not bad and not good:
                    break  # nothing here can be acknowledged: it waits until it expires there
        except RelayFailed as e:
            self.on_failure()
            event("mail_failed", logging.WARNING, slug=slug, error=str(e), sent=sent)
            return sent
        finally:
            self._tally(slug, refused, held)
        if sent or rejected:
            event("mail_relayed", slug=slug, sent=sent, rejected=rejected)
        return sent

    def _check(
        self, batch: list, origin: str, refused: Counter[str]
    ) -> tuple[list[Notification], list[str]]:
        """(notifications to send, ids of items refused for good); counts the refusals."""
        good: list[Notification] = []
        bad: list[str] = []
        seen: set[str] = set()
        for raw in batch:
            ident = notifications.mail_id(raw)
            if ident in seen:
                continue  # handed over twice in one batch: sent (or refused) once
            try:
                good.append(notifications.check(raw, origin))
            except Refused as e:
                refused[e.reason] += 1
                if ident is not None:
                    bad.append(ident)
            if ident is not None:
                seen.add(ident)
        return good, bad

    def _tally(self, slug: str, refused: Counter[str], held: int) -> None:
        with self._tally_lock:
            self.refused.update(refused)
            self.held += held
        if refused:
            event(
                "mail_refused",
                logging.WARNING,
                slug=slug,
                refused=sum(refused.values()),
                reasons=dict(sorted(refused.items())),
            )
        if held:
            event("mail_held", slug=slug, held=held)

    # -- the facility's side ---------------------------------------------------------------

    def _fetch(self, slug: str) -> list:
        """At most one batch of items as the facility sent them (checked later, one by one)."""
        code, body = self._call(slug, "GET", OUTBOX)
        try:
            answer = strictjson.loads(body, MAX_OUTBOX_BYTES)
        except ValueError as e:
            raise RelayFailed("outbox_unreadable") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("mails"), list):
            raise RelayFailed("outbox_unreadable")
        return answer["mails"][:OUTBOX_BATCH]

    def _ack(self, slug: str, ids: list[str]) -> None:
        if ids:
            self._call(slug, "POST", ACK, {"ids": ids})

    def _call(self, slug: str, method: str, target: str, body: dict | None = None):
        try:
            code, data = facility_http.request(
                self.config,
                slug,
                target,
                SOCKET_TIMEOUT,
                method=method,
                body=body,
                limit=MAX_OUTBOX_BYTES,  # read no more than is ever parsed
            )
        except facility_http.AnswerTooLarge as e:
            raise RelayFailed("outbox_unreadable") from e
        except (OSError, http.client.HTTPException) as e:
            raise RelayFailed("facility_unreachable") from e
        if code != 200:
            raise RelayFailed(f"facility_http_{code}")
        return code, data

    # -- the SMTP server's side ------------------------------------------------------------

    def _send(self, settings: SmtpSettings, mails: list[Notification]) -> tuple[set[str], set[str]]:
        """(ids the server accepted, ids it refused for good); stops at a temporary failure."""
        delivered: set[str] = set()
        refused: set[str] = set()
        if not mails:
            return delivered, refused
        try:
            server = self.connect(settings)
        except (OSError, smtplib.SMTPException):
            return delivered, refused
        try:
            for mail in mails:
                try:
                    message = build_message(settings, mail, self.clock())
                    server.send_message(message)
                except (ValueError, smtplib.SMTPRecipientsRefused):
                    refused.add(mail.id)  # a bad address or mail: retrying cannot help
                except smtplib.SMTPResponseException as e:
                    if 500 <= e.smtp_code < 600:
                        refused.add(mail.id)
                        continue
                    break  # 4xx: try again at the next probe
                else:
                    delivered.add(mail.id)
        except (OSError, smtplib.SMTPException):
            pass  # the connection broke: what was accepted so far is acknowledged
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
        return delivered, refused

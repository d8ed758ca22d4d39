"""Content-free e-mail notifications: who wants them, and the outbox the supervisor relays.

A facility has no network. A mail is composed here, sealed under its conversation's record key
and put into the `outbox` table; the supervisor fetches it over the socket, sends it and
acknowledges it, and only then is the row deleted (secure_delete, WAL truncated). Every outbox
row belongs to a conversation and cascades with it, so a queued mail is deleted like the rest
of the patient's data.

Content-free by construction, and no text at all: a queued mail is one recipient, one of the
fixed kinds of `medcell_common.notifications`, a language and (for the kinds that have one) a link
on the facility's own origin. The relay checks each field and writes subject and body from its own
templates; nothing here reads a message, title, file name or reference.
"""

import hmac
import json
import secrets
import sqlite3
from collections.abc import Callable

from medcell_common.notifications import LANGUAGES, OUTBOX_BATCH, Kind, is_address
from services.facility.core import accounts as auth
from services.facility.core import crypto, links, patients, store, throttle
from services.facility.core.errors import (
    BadRequest,
    Conflict,
    CryptoError,
    NotFound,
    TooManyRequests,
)
from services.facility.core.keys import Keyring

QUIET_SECONDS = 15 * 60  # at most one mail per conversation and recipient kind in this time
OUTBOX_MAX_AGE = 24 * 3600  # a mail the relay could not send in a day is dropped


class StaleLink(BadRequest):
    """The link to be mailed is not (any more) the conversation's current one."""

    code = "stale_link"


def check_address(value: object) -> str:
    """A single plain e-mail address (the relay's rule: medcell_common.notifications), or
    BadRequest."""
    if not isinstance(value, str):
        raise BadRequest("email must be a string")
    address = value.strip()
    if not is_address(address):
        raise BadRequest("email must be one plain address like name@example.org")
    return address


class Notifier:
    """One facility's notification settings and outbox; inert unless mail is enabled."""

    def __init__(
        self,
        keyring: Keyring,
        facility: str,
        facility_name: str,
        clock: Callable[[], int],
        enabled: bool,
        public_url: str,
    ):
        self.keyring = keyring
        self.facility = facility
        self.facility_name = facility_name
        self.clock = clock
        self.enabled = enabled
        self.public_url = public_url  # the facility's origin, with its trailing slash

    # -- staff: one opt-in address per account ---------------------------------------------

    def staff_address(self, conn: sqlite3.Connection, staff_id: int) -> str | None:
        row = conn.execute(
            "SELECT address FROM notify_staff WHERE staff_id = ?", (staff_id,)
        ).fetchone()
        return row[0] if row else None

    def set_staff_address(
        self, conn: sqlite3.Connection, staff_id: int, address: str | None
    ) -> None:
        """Opt in with an address, or out with None."""
        if address is not None:
            self._require_enabled()
        with store.write(conn):
            if address is None:
                conn.execute("DELETE FROM notify_staff WHERE staff_id = ?", (staff_id,))
                return
            conn.execute(
                "INSERT INTO notify_staff (staff_id, address) VALUES (?, ?) "
                "ON CONFLICT (staff_id) DO UPDATE SET address = excluded.address",
                (staff_id, check_address(address)),
            )

    def subscribed_staff(self, conn: sqlite3.Connection) -> list[str]:
        """Usernames of the accounts that get mails (for the admin; addresses stay private)."""
        rows = conn.execute(
            "SELECT s.username FROM notify_staff n JOIN staff s ON s.id = n.staff_id "
            "ORDER BY s.username"
        )
        return [r[0] for r in rows]

    # -- patient: one sealed address per conversation --------------------------------------

    def patient_address_set(self, conn: sqlite3.Connection, conv_id: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM notify_patient WHERE conversation_id = ?", (conv_id,)
        ).fetchone()
        return row is not None

    def set_patient_address(
        self, conn: sqlite3.Connection, conv_id: str, address: str | None
    ) -> None:
        """The patient's address for "your practice has answered" (None removes it)."""
        if address is not None:
            self._require_enabled()
            address = check_address(address)
        with store.write(conn):
            self._require_conversation(conn, conv_id)
            if address is None:
                conn.execute("DELETE FROM notify_patient WHERE conversation_id = ?", (conv_id,))
            else:
                sealed = self._seal(conn, conv_id, "notify_patient", conv_id, address.encode())
                conn.execute(
                    "INSERT INTO notify_patient (conversation_id, address) VALUES (?, ?) "
                    "ON CONFLICT (conversation_id) DO UPDATE SET address = excluded.address",
                    (conv_id, sealed),
                )
        if address is None:
            store.checkpoint(conn)  # the old sealed address leaves the WAL too

    # -- events that queue mails -----------------------------------------------------------

    def message_added(self, conn: sqlite3.Connection, conv_id: str, author: str) -> int:
        """Queue the mails a new message calls for; returns how many were queued."""
        if not self.enabled:
            return 0
        kind = "staff" if author == "patient" else "patient"
        with store.write(conn):
            now = self.clock()
            if self._recently_sent(conn, conv_id, kind, now):
                return 0
            if kind == "staff":
                recipients = [
                    r[0]
                    for r in conn.execute(
                        "SELECT n.address FROM notify_staff n JOIN staff s ON s.id = n.staff_id "
                        "WHERE s.active = 1"  # a deactivated account is told nothing
                    )
                ]
                mail = self._notification(Kind.STAFF_NEW_MESSAGE, "staff/")
            else:
                recipients = self._patient_address(conn, conv_id)
                mail = self._notification(Kind.PATIENT_ANSWERED)
            for to in recipients:
                self._enqueue(conn, conv_id, {"to": to, **mail}, now)
            if recipients:
                conn.execute(
                    "INSERT INTO notify_sent (conversation_id, kind, sent_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (conversation_id, kind) DO UPDATE SET sent_at = excluded.sent_at",
                    (conv_id, kind, now),
                )
        return len(recipients)

    def send_link(
        self, conn: sqlite3.Connection, conv_id: str, token: object, address: object
    ) -> None:
        """Queue the patient's link for an address that is not kept beyond this one mail.

        Only for a conversation with a PIN: a mailbox is not a safe place for a link that opens
        the conversation by itself. `token` must be the conversation's current link token, or
        None for the link kept to be sent again (links.current): the link stays valid either way.
        """
        self._require_enabled()
        to = check_address(address)
        with store.write(conn):
            row = conn.execute(
                "SELECT patient_token_hash, pin_hash IS NOT NULL FROM conversations WHERE id = ?",
                (conv_id,),
            ).fetchone()
            if row is None:
                raise NotFound("no such conversation")
            if token is None:
                token = links.current(conn, self.keyring, self.facility, conv_id)
                if token is None:
                    raise StaleLink("this conversation's link was not kept: make a new link")
            if not isinstance(token, str) or not hmac.compare_digest(
                row[0], auth.token_hash(token)
            ):
                raise StaleLink("patient_token is not this conversation's current link")
            if not row[1]:
                raise Conflict("only a link protected by a PIN may be sent by e-mail")
            self._enqueue_link(conn, conv_id, token, to)

    def request_link(
        self, conn: sqlite3.Connection, address: object, client: str, now: int
    ) -> None:
        """A patient who lost their link asks for it by address: every conversation whose
        patient set exactly this address (and whose link has a PIN and is not locked) gets its
        current link mailed there. The answer is the same whether any did: no oracle.

        Every request reads and opens every stored address, and counts against the client, so
        a match and a miss cost the same work apart from queueing the mail.
        """
        throttle.check(conn, "link_request", client, now)
        throttle.record_failure(conn, "link_request", client, now)
        to = check_address(address)
        self._require_enabled()
        matches = []
        rows = conn.execute(
            "SELECT n.conversation_id, n.address, c.pin_hash IS NOT NULL, c.pin_failures "
            "FROM notify_patient n JOIN conversations c ON c.id = n.conversation_id"
        ).fetchall()
        wanted = to.casefold().encode()
        for conv_id, sealed, has_pin, failures in rows:
            aad = crypto.aad(self.facility, "notify_patient", conv_id, "address")
            try:
                known = crypto.unseal(self.keyring.record_key(conn, conv_id), sealed, aad)
            except CryptoError:
                continue
            same = hmac.compare_digest(known.decode().casefold().encode(), wanted)
            if same and has_pin and failures < patients.MAX_PIN_FAILURES:
                matches.append((conv_id, known.decode()))  # to the address as the patient gave it
        # The same bookkeeping for a known and an unknown address: the mailbox's own limit is
        # counted either way, and the write happens either way (with the mails, if any).
        mailbox = to.casefold()
        try:
            throttle.check(conn, "link_mail", mailbox, now)
            limited = False
        except TooManyRequests:
            limited = True  # this mailbox had its link often enough this hour
        throttle.record_failure(conn, "link_mail", mailbox, now)
        with store.write(conn):
            for conv_id, known in [] if limited else matches:
                token = links.current(conn, self.keyring, self.facility, conv_id)
                if token is not None:
                    self._enqueue_link(conn, conv_id, token, known)

    # -- the outbox, for the relay ---------------------------------------------------------

    def discard_all(self, conn: sqlite3.Connection) -> int:
        """Drop every queued mail (mail was switched off): nothing would ever send them."""
        return _drop(conn, "1", ())

    def pending(self, conn: sqlite3.Connection) -> int:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def take(self, conn: sqlite3.Connection, limit: int = OUTBOX_BATCH) -> list[dict]:
        """The oldest queued notifications, opened: `{"id", "to", "kind", "lang", "link",
        "facility_name"}` each. Those too old to be worth sending, and rows of an older release
        that queued texts instead of notifications, are dropped."""
        cutoff = self.clock() - OUTBOX_MAX_AGE * 1_000_000
        _drop(conn, "created_at < ?", (cutoff,))
        rows = conn.execute(
            "SELECT id, conversation_id, mail FROM outbox ORDER BY created_at, rowid LIMIT ?",
            (limit,),
        ).fetchall()
        result, stale = [], []
        for mail_id, conv_id, sealed in rows:
            key = self.keyring.record_key(conn, conv_id)
            aad = crypto.aad(self.facility, "outbox", mail_id, "mail")
            mail = json.loads(crypto.unseal(key, sealed, aad))
            if mail.get("kind") not in set(Kind):
                stale.append(mail_id)
                continue
            result.append({"id": mail_id, **mail, "facility_name": self.facility_name})
        if stale:
            _drop(conn, f"id IN ({','.join('?' * len(stale))})", tuple(stale))
        return result

    def acknowledge(self, conn: sqlite3.Connection, ids: object) -> int:
        """Delete mails the relay has handed to the SMTP server; returns how many went."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise BadRequest("ids must be a list of mail ids")
        if len(ids) > OUTBOX_BATCH:
            raise BadRequest(f"at most {OUTBOX_BATCH} ids at once")
        if not ids:
            return 0
        with store.write(conn):
            marks = ",".join("?" * len(ids))
            deleted = conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids).rowcount
            if deleted:
                store.tally(conn, "mails_relayed", deleted)
        if deleted:
            store.checkpoint(conn)  # addresses must not linger in the WAL
        return deleted

    # -- internals -------------------------------------------------------------------------

    def _notification(self, kind: Kind, path: str | None = None) -> dict:
        """What the relay gets besides the recipient; the link is on the facility's own origin."""
        link = None if path is None else f"{self.public_url}{path}"
        return {"kind": kind.value, "lang": LANGUAGES[0], "link": link}

    def _enqueue_link(self, conn: sqlite3.Connection, conv_id: str, token: str, to: str) -> None:
        mail = {"to": to, **self._notification(Kind.PATIENT_LINK, f"p/{token}")}
        text = links.template(conn)
        if text is not None:
            mail["text"] = text  # the practice's words; the relay fills in name and link
        self._enqueue(conn, conv_id, mail)

    def _require_enabled(self) -> None:
        # No address is kept where no mail can ever be sent: it would be data without a purpose.
        if not self.enabled:
            raise Conflict("e-mail is not set up for this installation")

    def _recently_sent(self, conn: sqlite3.Connection, conv_id: str, kind: str, now: int) -> bool:
        row = conn.execute(
            "SELECT sent_at FROM notify_sent WHERE conversation_id = ? AND kind = ?",
            (conv_id, kind),
        ).fetchone()
        return row is not None and now - row[0] < QUIET_SECONDS * 1_000_000

    def _patient_address(self, conn: sqlite3.Connection, conv_id: str) -> list[str]:
        row = conn.execute(
            "SELECT address FROM notify_patient WHERE conversation_id = ?", (conv_id,)
        ).fetchone()
        if row is None:
            return []
        key = self.keyring.record_key(conn, conv_id)
        aad = crypto.aad(self.facility, "notify_patient", conv_id, "address")
        return [crypto.unseal(key, row[0], aad).decode()]

    def _enqueue(
        self, conn: sqlite3.Connection, conv_id: str, mail: dict, now: int | None = None
    ) -> None:
        mail_id = secrets.token_urlsafe(16)
        sealed = self._seal(conn, conv_id, "outbox", mail_id, json.dumps(mail).encode(), "mail")
        conn.execute(
            "INSERT INTO outbox (id, conversation_id, created_at, mail) VALUES (?, ?, ?, ?)",
            (mail_id, conv_id, self.clock() if now is None else now, sealed),
        )

    def _seal(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        table: str,
        record_id: str,
        plaintext: bytes,
        field: str = "address",
    ) -> bytes:
        key = self.keyring.record_key(conn, conv_id)
        return crypto.seal(key, plaintext, crypto.aad(self.facility, table, record_id, field))

    @staticmethod
    def _require_conversation(conn: sqlite3.Connection, conv_id: str) -> None:
        if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conv_id,)).fetchone() is None:
            raise NotFound("no such conversation")


def _drop(conn: sqlite3.Connection, where: str, params: tuple) -> int:
    """Delete queued mails that will never be sent, counted as mails_dropped; returns how many."""
    with store.write(conn):
        dropped = conn.execute(f"DELETE FROM outbox WHERE {where}", params).rowcount
        if dropped:
            store.tally(conn, "mails_dropped", dropped)
    if dropped:
        store.checkpoint(conn)
    return dropped

"""Patient access: a link (and, if set, a PIN) is exchanged for an expiring patient session.

The link's token never becomes a cookie: it is traded once for a fresh session token, so the
link can be kept out of history and logs. With a PIN, the first session is only "pending" and
grants nothing but the right to try the PIN; wrong PINs count on the conversation and, after
MAX_PIN_FAILURES, lock the link until staff issue a new one.
"""

import hmac
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from services.facility.core import accounts as auth
from services.facility.core import passwords, store, throttle, tokens
from services.facility.core.errors import BadRequest, LinkLocked, NotFound, Unauthorized

PIN_RE = re.compile(r"^[0-9]{4,8}$")
MAX_PIN_FAILURES = 5
PENDING_SECONDS = 15 * 60


@dataclass(frozen=True)
class Session:
    conversation_id: str
    pin_ok: bool


def hash_pin(conn: sqlite3.Connection, pin: object) -> bytes | None:
    """The argon2id hash of a PIN of 4 to 8 digits; None when no PIN was given."""
    if pin is None or pin == "":
        return None
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise BadRequest("pin must be 4 to 8 digits")
    return passwords.hash_password(conn, pin)


def open_link(conn: sqlite3.Connection, token: object, now: int, session_seconds: int) -> str:
    """Trade a patient link's token for a new session token (pending if a PIN is owed)."""
    conv_id, has_pin = link_conversation(conn, token)
    lifetime = PENDING_SECONDS if has_pin else session_seconds
    return new_session(conn, conv_id, not has_pin, now + lifetime * 1_000_000, now)


def link_conversation(conn: sqlite3.Connection, token: object) -> tuple[str, bool]:
    """The conversation a patient link opens and whether it has a PIN; NotFound or LinkLocked."""
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise NotFound("this link is not valid (any more)")
    digest = auth.token_hash(token)
    row = conn.execute(
        "SELECT patient_token_hash, id, pin_hash IS NOT NULL, pin_failures FROM conversations "
        "WHERE patient_token_hash = ?",
        (digest,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row[0], digest):
        raise NotFound("this link is not valid (any more)")
    _, conv_id, has_pin, failures = row
    if has_pin and failures >= MAX_PIN_FAILURES:
        raise LinkLocked("too many wrong PINs: ask the facility for a new link")
    return conv_id, bool(has_pin)


def enter_pin(
    conn: sqlite3.Connection,
    session_token: str,
    pin: object,
    client: str,
    now: int,
    session_seconds: int,
) -> str:
    """Check the PIN for a pending session; on success a new, full session token replaces it."""
    throttle.check(conn, "pin", client, now)
    current = session(conn, session_token, now)
    if current is None:
        raise NotFound("this session has ended: open the link again")
    if current.pin_ok:
        return session_token
    conv_id = current.conversation_id
    # Each attempt takes one of the link's tries before the slow check, in one statement, so
    # parallel guesses cannot all pass a count read before any of them was recorded.
    with store.write(conn):
        taken = conn.execute(
            "UPDATE conversations SET pin_failures = pin_failures + 1 "
            "WHERE id = ? AND pin_failures < ?",
            (conv_id, MAX_PIN_FAILURES),
        ).rowcount
        row = conn.execute(
            "SELECT pin_hash, pin_failures FROM conversations WHERE id = ?", (conv_id,)
        ).fetchone()
    if not taken:
        raise LinkLocked("too many wrong PINs: ask the facility for a new link")
    candidate = pin if isinstance(pin, str) and PIN_RE.match(pin) else "x"
    if not passwords.verify_password(conn, row[0], candidate):
        throttle.record_failure(conn, "pin", client, now)
        if row[1] >= MAX_PIN_FAILURES:
            raise LinkLocked("too many wrong PINs: ask the facility for a new link")
        raise Unauthorized(f"wrong PIN; {MAX_PIN_FAILURES - row[1]} tries left")
    # The right PIN gives its try back; wrong ones count for the link's whole life.
    # A fresh token after the PIN: whoever saw the pending one gains nothing from it.
    with store.write(conn):
        conn.execute(
            "UPDATE conversations SET pin_failures = pin_failures - 1 WHERE id = ?", (conv_id,)
        )
        conn.execute(
            "DELETE FROM patient_sessions WHERE token_hash = ?", (auth.token_hash(session_token),)
        )
    return new_session(conn, current.conversation_id, True, now + session_seconds * 1_000_000, now)


def pin_tries_left(conn: sqlite3.Connection, conv_id: str) -> int:
    row = conn.execute("SELECT pin_failures FROM conversations WHERE id = ?", (conv_id,)).fetchone()
    return max(0, MAX_PIN_FAILURES - row[0]) if row else 0


def session(conn: sqlite3.Connection, token: str | None, now: int) -> Session | None:
    """The live patient session a token names, or None."""
    row = tokens.live_row(
        conn,
        "SELECT token_hash, conversation_id, pin_ok FROM patient_sessions "
        "WHERE token_hash = ? AND expires_at > ?",
        token,
        now,
    )
    if row is None:
        return None
    return Session(conversation_id=row[1], pin_ok=bool(row[2]))


def end_session(conn: sqlite3.Connection, token: str) -> None:
    with store.write(conn):
        conn.execute("DELETE FROM patient_sessions WHERE token_hash = ?", (auth.token_hash(token),))


def reissue(
    conn: sqlite3.Connection,
    conv_id: str,
    pin_hash: bytes | None,
    keep: Callable[[sqlite3.Connection, str], None] = lambda conn, token: None,
) -> str:
    """A new patient link for a conversation: the old link and all its sessions (the devices
    that stay signed in too) stop working.
    `keep(conn, token)` runs in the same write (links.Links.keep: the link to send again)."""
    token = auth.new_token()
    with store.write(conn):
        changed = conn.execute(
            "UPDATE conversations SET patient_token_hash = ?, pin_hash = ?, pin_failures = 0 "
            "WHERE id = ?",
            (auth.token_hash(token), pin_hash, conv_id),
        ).rowcount
        if not changed:
            raise NotFound("no such conversation")
        conn.execute("DELETE FROM patient_sessions WHERE conversation_id = ?", (conv_id,))
        conn.execute("DELETE FROM patient_devices WHERE conversation_id = ?", (conv_id,))
        keep(conn, token)
    return token


def access(conn: sqlite3.Connection) -> dict[str, dict]:
    """Per conversation id: whether it has a PIN and whether its link is locked."""
    rows = conn.execute("SELECT id, pin_hash IS NOT NULL, pin_failures FROM conversations")
    return {
        conv_id: {"pin": bool(pin), "locked": bool(pin) and failures >= MAX_PIN_FAILURES}
        for conv_id, pin, failures in rows
    }


def new_session(
    conn: sqlite3.Connection, conv_id: str, pin_ok: bool, expires_at: int, now: int
) -> str:
    token = auth.new_token()
    with store.write(conn):
        conn.execute("DELETE FROM patient_sessions WHERE expires_at <= ?", (now,))
        conn.execute(
            "INSERT INTO patient_sessions (token_hash, conversation_id, pin_ok, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (auth.token_hash(token), conv_id, int(pin_ok), expires_at),
        )
    return token

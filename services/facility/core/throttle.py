"""Failed attempts (logins, tokens, PINs), counted in the facility's database.

Logins are counted per account and client together, so one colleague's typos behind the
practice's shared address lock out only that colleague's account from there; a looser cap per
client alone stops one address from spraying guesses over many accounts.
"""

import hashlib
import sqlite3

from services.facility.core import store
from services.facility.core.errors import TooManyRequests

LOGIN_LIMIT = (5, 15 * 60)  # failures per (account, client), window seconds
LOGIN_CLIENT_LIMIT = (30, 15 * 60)  # failures per client over all accounts
TOKEN_LIMIT = (30, 60)
PIN_LIMIT = (10, 15 * 60)
# Patient uploads per conversation: files, bytes and window seconds. Enough for a few photo
# series an hour; a script with a leaked link is stopped long before it fills the quota.
UPLOAD_LIMIT = (20, 200 * 1024 * 1024, 60 * 60)
_LIMITS = {"login": LOGIN_LIMIT, "login_client": LOGIN_CLIENT_LIMIT, "pin": PIN_LIMIT}


def _key(kind: str, client: str) -> bytes:
    return hashlib.sha256(f"{kind}|{client}".encode()).digest()[:16]


def login_subjects(username: str, client: str) -> list[tuple[str, str]]:
    """What one login failure counts against: the (account, client) pair and the client."""
    # Only a hash of the name reaches the table (see _key), whatever was typed.
    return [("login", f"{username}|{client}"), ("login_client", client)]


def check(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    """Raise 429 (with the seconds left) while a client has used up its failures for this kind."""
    limit, _ = _LIMITS.get(kind, TOKEN_LIMIT)
    row = conn.execute(
        "SELECT failures, window_ends FROM throttle WHERE key = ?", (_key(kind, client),)
    ).fetchone()
    if row and row[1] > now and row[0] >= limit:
        wait = -(-(row[1] - now) // 1_000_000)
        raise TooManyRequests(f"Too many failed attempts; try again in {_wait_text(wait)}.", wait)


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def record_failure(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    record_failures(conn, [(kind, client)], now)


def record_failures(conn: sqlite3.Connection, subjects: list[tuple[str, str]], now: int) -> None:
    """Count one failure against each (kind, client) subject, in one transaction."""
    with store.write(conn):
        for kind, client in subjects:
            _, window = _LIMITS.get(kind, TOKEN_LIMIT)
            conn.execute(
                "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 1, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "failures = CASE WHEN window_ends > ?3 THEN failures + 1 ELSE 1 END, "
                "window_ends = CASE WHEN window_ends > ?3 THEN window_ends ELSE ?2 END",
                (_key(kind, client), now + window * 1_000_000, now),
            )


def count_upload(conn: sqlite3.Connection, conv_id: str, nbytes: int, now: int) -> None:
    """Count one patient upload into its conversation, or raise 429 if the link used up its share.

    Call it inside the upload's write transaction: a refused or failed upload counts nothing.
    """
    files, volume, window = UPLOAD_LIMIT
    row = conn.execute(
        "SELECT uploads, bytes, window_ends FROM upload_throttle WHERE conversation_id = ?",
        (conv_id,),
    ).fetchone()
    if row is None or row[2] <= now:
        uploads, sent, ends = 0, 0, now + window * 1_000_000
    else:
        uploads, sent, ends = row
    if uploads + 1 > files or sent + nbytes > volume:
        raise TooManyRequests(
            "Too many uploads through this link; try again later.", (ends - now) // 1_000_000 + 1
        )
    conn.execute(
        "INSERT INTO upload_throttle (conversation_id, uploads, bytes, window_ends) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
        "uploads = excluded.uploads, bytes = excluded.bytes, window_ends = excluded.window_ends",
        (conv_id, uploads + 1, sent + nbytes, ends),
    )

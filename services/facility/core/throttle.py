"""Failed attempts per client (logins, tokens, PINs), counted in the facility's database."""

import hashlib
import sqlite3

from services.facility.core import store
from services.facility.core.errors import TooManyRequests

LOGIN_LIMIT = (5, 15 * 60)  # failures, window seconds
TOKEN_LIMIT = (30, 60)
PIN_LIMIT = (10, 15 * 60)
_LIMITS = {"login": LOGIN_LIMIT, "pin": PIN_LIMIT}


def _key(kind: str, client: str) -> bytes:
    return hashlib.sha256(f"{kind}|{client}".encode()).digest()[:16]


def check(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    """Raise 429 while a client has used up its failures for this kind."""
    limit, _ = _LIMITS.get(kind, TOKEN_LIMIT)
    row = conn.execute(
        "SELECT failures, window_ends FROM throttle WHERE key = ?", (_key(kind, client),)
    ).fetchone()
    if row and row[1] > now and row[0] >= limit:
        raise TooManyRequests(
            "Too many failed attempts; try again later.", (row[1] - now) // 1_000_000 + 1
        )


def record_failure(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    _, window = _LIMITS.get(kind, TOKEN_LIMIT)
    key = _key(kind, client)
    with store.write(conn):
        conn.execute(
            "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN window_ends > ?3 THEN failures + 1 ELSE 1 END, "
            "window_ends = CASE WHEN window_ends > ?3 THEN window_ends ELSE ?2 END",
            (key, now + window * 1_000_000, now),
        )

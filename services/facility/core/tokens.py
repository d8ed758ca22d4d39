"""Finding the live row a bearer token names (sessions, remembered devices): only the token's
SHA-256 hash is stored and looked up, and compared in constant time."""

import hashlib
import hmac
import sqlite3

MAX_TOKEN_CHARS = 128


def live_row(conn: sqlite3.Connection, query: str, token: str | None, now: int) -> tuple | None:
    """The row `query` finds for the token's hash and `now`, or None for no or an overlong token.

    `query` is a constant whose first column is the stored hash and whose parameters are
    (hash, now)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    digest = hashlib.sha256(token.encode()).digest()
    row = conn.execute(query, (digest, now)).fetchone()
    if row is None or not hmac.compare_digest(row[0], digest):
        return None
    return row

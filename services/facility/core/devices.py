""" "Stay signed in on this device": a patient's device, remembered for 30 days.

The device keeps a random token in its own cookie; the database keeps only the token's hash, the
conversation and the end of the 30 days. While it lasts, a device without a live session gets a
new one (with the PIN counted as given: the patient chose this device). It ends when the patient
signs the device out or leaves, when staff make a new link, at the end of the 30 days, and with the
conversation (cascade): then nothing of it is left in the database.
"""

import sqlite3
from dataclasses import dataclass

from services.facility.core import accounts as auth
from services.facility.core import patients, store, tokens

DEVICE_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Device:
    conversation_id: str
    expires_at: int


def remember(conn: sqlite3.Connection, conv_id: str, now: int) -> tuple[str, int]:
    """A new device token for a conversation; returns it and when it ends."""
    token, expires_at = auth.new_token(), now + DEVICE_SECONDS * 1_000_000
    with store.write(conn):
        conn.execute("DELETE FROM patient_devices WHERE expires_at <= ?", (now,))
        conn.execute(
            "INSERT INTO patient_devices (token_hash, conversation_id, expires_at) "
            "VALUES (?, ?, ?)",
            (auth.token_hash(token), conv_id, expires_at),
        )
    return token, expires_at


def device(conn: sqlite3.Connection, token: str | None, now: int) -> Device | None:
    """The live device a token names, or None."""
    row = tokens.live_row(
        conn,
        "SELECT token_hash, conversation_id, expires_at FROM patient_devices "
        "WHERE token_hash = ? AND expires_at > ?",
        token,
        now,
    )
    if row is None:
        return None
    return Device(conversation_id=row[1], expires_at=row[2])


def resume(
    conn: sqlite3.Connection, token: str | None, now: int, session_seconds: int
) -> str | None:
    """A new full patient session for a remembered device, or None."""
    known = device(conn, token, now)
    if known is None:
        return None
    return patients.new_session(
        conn, known.conversation_id, True, now + session_seconds * 1_000_000, now
    )


def forget(conn: sqlite3.Connection, token: str | None) -> None:
    """End one device (the patient signs it out)."""
    if not token or len(token) > 128:
        return
    with store.write(conn):
        conn.execute("DELETE FROM patient_devices WHERE token_hash = ?", (auth.token_hash(token),))

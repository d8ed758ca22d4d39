"""The steps of a staff sign-in after the password: a second factor, a password to change, a
second factor to set up. A session at any stage but FULL opens only its own next step.

The order: whoever has a second factor proves it first (a reset password alone must not let
anyone choose the next one); then a password an admin reset is replaced; then, where the
facility requires a second factor, an account without one sets it up.
"""

import hashlib
import hmac
import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from services.facility.core import passwords, store, tokens
from services.facility.core.errors import BadRequest

REQUIRE_SETTING = "require_second_factor"


class Stage(StrEnum):
    FULL = "full"
    SECOND_FACTOR = "second_factor"
    PASSWORD = "password"
    SETUP = "setup"


@dataclass(frozen=True)
class Pending:
    """A session that is still signing in: whose, and which step it owes."""

    staff_id: int
    username: str
    stage: Stage


def required(conn: sqlite3.Connection) -> bool:
    """Whether the admins require a second factor of every account."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (REQUIRE_SETTING,)).fetchone()
    return bool(row and row[0] == "1")


def set_required(conn: sqlite3.Connection, value: bool) -> None:
    with store.write(conn):
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (REQUIRE_SETTING, "1" if value else "0"),
        )


def factors(conn: sqlite3.Connection, staff_id: int) -> dict:
    """Which second factors an account has: its passkeys' count and a confirmed TOTP."""
    (keys,) = conn.execute(
        "SELECT count(*) FROM staff_passkeys WHERE staff_id = ?", (staff_id,)
    ).fetchone()
    totp = conn.execute(
        "SELECT 1 FROM staff_totp WHERE staff_id = ? AND confirmed = 1", (staff_id,)
    ).fetchone()
    return {"passkeys": keys, "totp": totp is not None}


def remove_factors(conn: sqlite3.Connection, staff_id: int) -> None:
    """An admin's help for a colleague who lost their devices: passkeys, TOTP and codes go."""
    with store.write(conn):
        for table in ("staff_passkeys", "staff_totp", "staff_recovery_codes"):
            conn.execute(f"DELETE FROM {table} WHERE staff_id = ?", (staff_id,))


def has_factor(conn: sqlite3.Connection, staff_id: int) -> bool:
    found = factors(conn, staff_id)
    return bool(found["passkeys"] or found["totp"])


def first_stage(conn: sqlite3.Connection, staff_id: int) -> Stage:
    """Where a sign-in with the right password goes on."""
    if has_factor(conn, staff_id):
        return Stage.SECOND_FACTOR
    return after_factor(conn, staff_id)


def after_factor(conn: sqlite3.Connection, staff_id: int) -> Stage:
    """Where it goes on once the second factor (if any) is proven."""
    (must_change,) = conn.execute(
        "SELECT must_change_password FROM staff WHERE id = ?", (staff_id,)
    ).fetchone()
    if must_change:
        return Stage.PASSWORD
    if required(conn) and not has_factor(conn, staff_id):
        return Stage.SETUP
    return Stage.FULL


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def pending(conn: sqlite3.Connection, token: str | None, now: int) -> Pending | None:
    """The live session of an active account that `token` names, at whatever stage."""
    row = tokens.live_row(
        conn,
        "SELECT s.token_hash, st.id, st.username, s.stage FROM staff_sessions s "
        "JOIN staff st ON st.id = s.staff_id "
        "WHERE s.token_hash = ? AND s.expires_at > ? AND st.active = 1",
        token,
        now,
    )
    if row is None:
        return None
    return Pending(row[1], row[2], Stage(row[3]))


def advance(conn: sqlite3.Connection, token: str, stage: Stage) -> None:
    """Move a session on to `stage`."""
    with store.write(conn):
        conn.execute(
            "UPDATE staff_sessions SET stage = ? WHERE token_hash = ?", (stage, _digest(token))
        )


def replace_password(conn: sqlite3.Connection, token: str, staff_id: int, new: object) -> Stage:
    """The password an admin reset, replaced by its owner's own; every other session of the
    account ends. Returns the stage this session moves on to."""
    password = passwords.check_password(new)
    hashed = passwords.hash_password(conn, password)
    with store.write(conn):
        conn.execute(
            "UPDATE staff SET password_hash = ?, must_change_password = 0 WHERE id = ?",
            (hashed, staff_id),
        )
        conn.execute(
            "DELETE FROM staff_sessions WHERE staff_id = ? AND token_hash != ?",
            (staff_id, _digest(token)),
        )
    stage = after_factor(conn, staff_id)
    advance(conn, token, stage)
    return stage


def check_same(new: str, again: str) -> None:
    if not hmac.compare_digest(new.encode(), again.encode()):
        raise BadRequest("the two new passwords differ")

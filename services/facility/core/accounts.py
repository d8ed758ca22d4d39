"""Who is asking: staff (passwords, expiring bearer tokens) or one conversation's patient.

Only SHA-256 hashes of tokens are stored; tokens carry 256 random bits, so a fast hash is enough
and a database copy yields nothing usable. Failed logins are throttled per client, per account and
per both (core/throttle.py); bad tokens per client.
"""

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass

from services.facility.core import passwords, signin, store, throttle
from services.facility.core.errors import (
    AccountDisabled,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PinRequired,
    Unauthorized,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ROLES = ("admin", "staff")
DISPLAY_NAME_CHARS = 80
# One line of printable text: no control characters (a name is shown to patients and in PDFs).
_NAME_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Principal:
    kind: str  # "staff" or "patient"
    staff_id: int | None = None
    username: str | None = None
    role: str | None = None
    conversation_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def new_token() -> str:
    """A bearer secret with 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise BadRequest(
            "username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    return username


def check_display_name(value: object) -> str:
    """The name colleagues and patients see on this account's messages: 1-80 characters on one
    line, without control characters; surrounding spaces are dropped."""
    if not isinstance(value, str):
        raise BadRequest("display_name must be a string")
    name = value.strip()
    if not name or len(name) > DISPLAY_NAME_CHARS or _NAME_BAD.search(name):
        raise BadRequest(
            f"display_name must be 1-{DISPLAY_NAME_CHARS} characters on one line, "
            "without control characters"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest("display_name must be valid UTF-8 text") from e
    return name


# -- staff --------------------------------------------------------------------------------


def create_staff(
    conn: sqlite3.Connection,
    username: str,
    password: str,
    role: str,
    now: int,
    display_name: str | None = None,
) -> None:
    """A new account; without a display name its username stands in until one is set."""
    check_username(username)
    passwords.check_password(password)
    if role not in ROLES:
        raise BadRequest("role must be 'admin' or 'staff'")
    name = "" if display_name is None else check_display_name(display_name)
    hashed = passwords.hash_password(conn, password)
    with store.write(conn):
        # Ids are never reused: messages keep the id of the account that wrote them.
        (staff_id,) = conn.execute(
            "SELECT max(coalesce((SELECT value FROM counters WHERE name = 'staff_last_id'), 0), "
            "coalesce((SELECT max(id) FROM staff), 0)) + 1"
        ).fetchone()
        try:
            conn.execute(
                "INSERT INTO staff (id, username, password_hash, role, created_at, display_name) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (staff_id, username, hashed, role, now, name),
            )
        except sqlite3.IntegrityError as e:
            raise Conflict(f"a staff account named {username!r} exists already") from e
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('staff_last_id', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (staff_id,),
        )


def list_staff(conn: sqlite3.Connection) -> list[dict]:
    rows = store.table(conn, "staff").rows_where(
        select="username, role, created_at, active, display_name", order_by="username"
    )
    return [
        {
            **row,
            "active": bool(row["active"]),
            "display_name": row["display_name"] or row["username"],
        }
        for row in rows
    ]


def display_names(conn: sqlite3.Connection) -> dict[int, str]:
    """Every account's display name by id (its username where none is set)."""
    return {
        staff_id: name or username
        for staff_id, username, name in conn.execute("SELECT id, username, display_name FROM staff")
    }


def set_display_name(
    conn: sqlite3.Connection, username: str, value: object, acting: Principal
) -> str:
    """Rename an account for display: its owner or an admin may."""
    if username != acting.username and not acting.is_admin:
        raise Forbidden("only admins change other accounts' names")
    name = check_display_name(value)
    with store.write(conn):
        staff_id = _staff_id(conn, username)
        conn.execute("UPDATE staff SET display_name = ? WHERE id = ?", (name, staff_id))
    return name


def remove_staff(conn: sqlite3.Connection, username: str, acting: Principal) -> None:
    if username == acting.username:
        raise Conflict("you cannot remove your own account")
    with store.write(conn):
        row = conn.execute("SELECT id, role FROM staff WHERE username = ?", (username,)).fetchone()
        if row is None:
            raise NotFound("no such staff account")
        conn.execute("DELETE FROM staff WHERE id = ?", (row[0],))
        # Staff ids may be reused by a later account, which must not inherit what was read.
        conn.execute("DELETE FROM read_marks WHERE reader = ?", (row[0],))


def set_active(conn: sqlite3.Connection, username: str, active: bool, acting: Principal) -> None:
    """Deactivate (ending every session at once) or reactivate an account."""
    if username == acting.username:
        raise Conflict("you cannot deactivate your own account")
    with store.write(conn):
        staff_id = _staff_id(conn, username)
        conn.execute("UPDATE staff SET active = ? WHERE id = ?", (int(active), staff_id))
        if not active:
            conn.execute("DELETE FROM staff_sessions WHERE staff_id = ?", (staff_id,))


def reset_password(conn: sqlite3.Connection, username: str, acting: Principal) -> str:
    """Give another account a new generated password (returned once); its sessions end."""
    if username == acting.username:
        raise Conflict("change your own password with your current one")
    password = passwords.generate_password()
    hashed = passwords.hash_password(conn, password)
    with store.write(conn):
        staff_id = _staff_id(conn, username)
        # Known to the admin who passed it on: its owner must choose their own at next sign-in.
        conn.execute(
            "UPDATE staff SET password_hash = ?, must_change_password = 1 WHERE id = ?",
            (hashed, staff_id),
        )
        conn.execute("DELETE FROM staff_sessions WHERE staff_id = ?", (staff_id,))
    return password


def _staff_id(conn: sqlite3.Connection, username: str) -> int:
    row = conn.execute("SELECT id FROM staff WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise NotFound("no such staff account")
    return row[0]


def change_password(conn: sqlite3.Connection, who: Principal, current: str, new: str) -> None:
    passwords.check_password(new)
    row = conn.execute("SELECT password_hash FROM staff WHERE id = ?", (who.staff_id,)).fetchone()
    if row is None or not passwords.verify_password(
        conn, row[0], current if isinstance(current, str) else ""
    ):
        raise Unauthorized("current password is wrong")
    hashed = passwords.hash_password(conn, new)
    with store.write(conn):
        conn.execute("UPDATE staff SET password_hash = ? WHERE id = ?", (hashed, who.staff_id))
        # Every other session of this account ends: a changed password must lock out a thief.
        conn.execute("DELETE FROM staff_sessions WHERE staff_id = ?", (who.staff_id,))


def login(
    conn: sqlite3.Connection,
    username: object,
    password: object,
    client: str,
    now: int,
    session_seconds: int,
) -> str:
    """A new staff bearer token, or Unauthorized; failures count per account, client and both."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("username and password must be strings")
    throttle.check_login(conn, username, client, now)
    row = conn.execute(
        "SELECT id, password_hash, active FROM staff WHERE username = ?", (username,)
    ).fetchone()
    with passwords.hashing(conn):
        # Checked again in the slot: requests that queued up behind earlier failures must see
        # them, or a burst of parallel guesses would outrun the throttle.
        throttle.check_login(conn, username, client, now)
        ok = passwords.verify_in_slot(
            row[1] if row else passwords.DUMMY_HASH, password[: passwords.MAX_PASSWORD]
        )
        if not row or not ok:
            throttle.record_login_failure(conn, username, client, now)
    if not row or not ok:
        raise Unauthorized("wrong username or password")
    if not row[2]:
        # Said only after the right password, so it tells a guesser nothing.
        raise AccountDisabled("this account has been deactivated by an administrator")
    throttle.record_login_success(conn, username, client, now)
    # What the password alone opens: everything, or only the next step of the sign-in.
    return open_session(conn, row[0], signin.first_stage(conn, row[0]), now, session_seconds)


def open_session(
    conn: sqlite3.Connection, staff_id: int, stage: str, now: int, session_seconds: int
) -> str:
    """A new session token of the account at `stage` (signin.Stage)."""
    token = new_token()
    with store.write(conn):
        conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
        conn.execute(
            "INSERT INTO staff_sessions (token_hash, staff_id, expires_at, stage) "
            "VALUES (?, ?, ?, ?)",
            (token_hash(token), staff_id, now + session_seconds * 1_000_000, stage),
        )
    return token


def logout(conn: sqlite3.Connection, token: str) -> None:
    with store.write(conn):
        conn.execute("DELETE FROM staff_sessions WHERE token_hash = ?", (token_hash(token),))


def resolve(conn: sqlite3.Connection, token: str, now: int) -> Principal | None:
    """The principal a bearer token (staff, patient link or patient session) belongs to, or None."""
    digest = token_hash(token)
    row = conn.execute(
        "SELECT s.token_hash, st.id, st.username, st.role FROM staff_sessions s "
        "JOIN staff st ON st.id = s.staff_id "
        "WHERE s.token_hash = ? AND s.expires_at > ? AND st.active = 1 AND s.stage = 'full'",
        (digest, now),
    ).fetchone()
    if row and hmac.compare_digest(row[0], digest):
        return Principal("staff", staff_id=row[1], username=row[2], role=row[3])
    row = conn.execute(
        "SELECT patient_token_hash, id, pin_hash IS NOT NULL FROM conversations "
        "WHERE patient_token_hash = ?",
        (digest,),
    ).fetchone()
    if row and hmac.compare_digest(row[0], digest):
        if row[2]:
            # Else the PIN would be pointless: whoever holds the link must still prove the PIN.
            raise PinRequired("this conversation has a PIN: open a patient session with it")
        return Principal("patient", conversation_id=row[1])
    row = conn.execute(
        "SELECT token_hash, conversation_id FROM patient_sessions "
        "WHERE token_hash = ? AND pin_ok = 1 AND expires_at > ?",
        (digest, now),
    ).fetchone()
    if row and hmac.compare_digest(row[0], digest):
        return Principal("patient", conversation_id=row[1])
    return None

"""Who is asking: staff (argon2id passwords, expiring bearer tokens) or one conversation's patient.

Only SHA-256 hashes of tokens are stored; tokens carry 256 random bits, so a fast hash is enough
and a database copy yields nothing usable. Failed logins and bad tokens are throttled per client.
"""

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash

from services.facility.core import store
from services.facility.core.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PinRequired,
    TooManyRequests,
    Unauthorized,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 256
ROLES = ("admin", "staff")
_OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Each argon2id hash holds 64 MiB while it runs, and a facility container has 256 MiB for all of
# its workers: one hash at a time per container (a thread lock here, a file lock across workers).
# That still allows about seven logins a second, far more than a practice needs.
_HASHING = threading.Lock()
_hash_lock_path: Path | None = None
# Verifying against this when the username is unknown keeps both paths equally slow. It is the
# hash of random bytes nobody kept, fixed here so no worker has to make one.
_DUMMY_HASH = (
    b"$argon2id$v=19$m=65536,t=2,p=1$N5ctCdrsEVrl9WM9sRbujg"
    b"$mBopV/kSQTfHes9gTq/C1Tha+ygU01/enQ1yLeHvKd8"
)


def use_hash_lock(path: Path | None) -> None:
    """Share the one-hash-at-a-time limit with every process that uses this lock file."""
    global _hash_lock_path
    _hash_lock_path = path


@contextlib.contextmanager
def hashing() -> Iterator[None]:
    """Hold the facility's one argon2id slot."""
    with _HASHING:
        if _hash_lock_path is None:
            yield
            return
        fd = os.open(_hash_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


LOGIN_LIMIT = (5, 15 * 60)  # failures, window seconds
TOKEN_LIMIT = (30, 60)
PIN_LIMIT = (10, 15 * 60)
_LIMITS = {"login": LOGIN_LIMIT, "pin": PIN_LIMIT}


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


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password(password: str) -> bytes:
    with hashing():
        return nacl.pwhash.argon2id.str(password.encode(), opslimit=_OPS, memlimit=_MEM)


def verify_password(stored: bytes, password: str) -> bool:
    with hashing():
        return _verify(stored, password)


def _verify(stored: bytes, password: str) -> bool:
    """Check a password against its hash; the caller holds the hashing slot."""
    try:
        return nacl.pwhash.verify(stored, password.encode())
    except nacl.exceptions.InvalidkeyError:
        return False


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise BadRequest(
            "username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-'"
        )
    return username


def check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


# -- throttling ---------------------------------------------------------------------------


def _throttle_key(kind: str, client: str) -> bytes:
    return hashlib.sha256(f"{kind}|{client}".encode()).digest()[:16]


def check_throttle(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    """Raise 429 while a client has used up its failures for this kind."""
    limit, _ = _LIMITS.get(kind, TOKEN_LIMIT)
    row = conn.execute(
        "SELECT failures, window_ends FROM throttle WHERE key = ?", (_throttle_key(kind, client),)
    ).fetchone()
    if row and row[1] > now and row[0] >= limit:
        raise TooManyRequests(
            "Too many failed attempts; try again later.", (row[1] - now) // 1_000_000 + 1
        )


def record_failure(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    _, window = _LIMITS.get(kind, TOKEN_LIMIT)
    key = _throttle_key(kind, client)
    with store.write(conn):
        conn.execute(
            "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN window_ends > ?3 THEN failures + 1 ELSE 1 END, "
            "window_ends = CASE WHEN window_ends > ?3 THEN window_ends ELSE ?2 END",
            (key, now + window * 1_000_000, now),
        )


# -- staff --------------------------------------------------------------------------------


def create_staff(
    conn: sqlite3.Connection, username: str, password: str, role: str, now: int
) -> None:
    check_username(username)
    check_password(password)
    if role not in ROLES:
        raise BadRequest("role must be 'admin' or 'staff'")
    hashed = hash_password(password)
    with store.write(conn):
        try:
            conn.execute(
                "INSERT INTO staff (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                (username, hashed, role, now),
            )
        except sqlite3.IntegrityError as e:
            raise Conflict(f"a staff account named {username!r} exists already") from e


def list_staff(conn: sqlite3.Connection) -> list[dict]:
    rows = store.table(conn, "staff").rows_where(
        select="username, role, created_at", order_by="username"
    )
    return list(rows)


def remove_staff(conn: sqlite3.Connection, username: str, acting: Principal) -> None:
    if username == acting.username:
        raise Conflict("you cannot remove your own account")
    with store.write(conn):
        row = conn.execute("SELECT id, role FROM staff WHERE username = ?", (username,)).fetchone()
        if row is None:
            raise NotFound("no such staff account")
        conn.execute("DELETE FROM staff WHERE id = ?", (row[0],))


def change_password(conn: sqlite3.Connection, who: Principal, current: str, new: str) -> None:
    check_password(new)
    row = conn.execute("SELECT password_hash FROM staff WHERE id = ?", (who.staff_id,)).fetchone()
    if row is None or not verify_password(row[0], current if isinstance(current, str) else ""):
        raise Unauthorized("current password is wrong")
    hashed = hash_password(new)
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
    """A new staff bearer token, or Unauthorized; failures count against the client."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("username and password must be strings")
    check_throttle(conn, "login", client, now)
    row = conn.execute(
        "SELECT id, password_hash FROM staff WHERE username = ?", (username,)
    ).fetchone()
    with hashing():
        # Checked again in the slot: requests that queued up behind earlier failures must see
        # them, or a burst of parallel guesses would outrun the throttle.
        check_throttle(conn, "login", client, now)
        ok = _verify(row[1] if row else _DUMMY_HASH, password[:MAX_PASSWORD])
        if not row or not ok:
            record_failure(conn, "login", client, now)
    if not row or not ok:
        raise Unauthorized("wrong username or password")
    token = new_token()
    with store.write(conn):
        conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
        conn.execute(
            "INSERT INTO staff_sessions (token_hash, staff_id, expires_at) VALUES (?, ?, ?)",
            (token_hash(token), row[0], now + session_seconds * 1_000_000),
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
        "JOIN staff st ON st.id = s.staff_id WHERE s.token_hash = ? AND s.expires_at > ?",
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

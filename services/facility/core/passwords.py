"""Staff passwords: argon2id, one hash at a time per container.

Each argon2id hash holds 64 MiB while it runs, and a facility container has 256 MiB for all of
its workers: one hash at a time per container (a thread lock here, a file lock across workers).
That still allows about seven logins a second, far more than a practice needs.
"""

import contextlib
import fcntl
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import nacl.exceptions
import nacl.pwhash

from services.facility.core.errors import BadRequest

MIN_PASSWORD, MAX_PASSWORD = 12, 256
_OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# One hash at a time in this process (its threads); Store.hash_lock shares that across processes.
_HASHING = threading.Lock()
# Verifying against this when the username is unknown keeps both paths equally slow. It is the
# hash of random bytes nobody kept, fixed here so no worker has to make one.
DUMMY_HASH = (
    b"$argon2id$v=19$m=65536,t=2,p=1$N5ctCdrsEVrl9WM9sRbujg"
    b"$mBopV/kSQTfHes9gTq/C1Tha+ygU01/enQ1yLeHvKd8"
)


@contextlib.contextmanager
def hashing(conn: sqlite3.Connection) -> Iterator[None]:
    """Hold the argon2id slot of the facility whose database `conn` is."""
    owner = getattr(conn, "store", None)
    lock_file: Path | None = owner.hash_lock if owner is not None else None
    with _HASHING:
        if lock_file is None:
            yield
            return
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password(conn: sqlite3.Connection, password: str) -> bytes:
    with hashing(conn):
        return nacl.pwhash.argon2id.str(password.encode(), opslimit=_OPS, memlimit=_MEM)


def verify_password(conn: sqlite3.Connection, stored: bytes, password: str) -> bool:
    with hashing(conn):
        return verify_in_slot(stored, password)


def verify_in_slot(stored: bytes, password: str) -> bool:
    """Check a password against its hash; the caller holds the hashing slot."""
    try:
        return nacl.pwhash.verify(stored, password.encode())
    except nacl.exceptions.InvalidkeyError:
        return False


def check_password(password: object) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password

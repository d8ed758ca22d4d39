"""The deletion job: runs inside the facility's own process, exactly once per facility.

Every gunicorn worker starts a Sweeper, but only the one that holds an exclusive lock on a file in
the data directory works; if that worker dies the lock is released and another takes over. The job
is deadline-driven: it wakes at the next conversation's expiry (or after a short interval, in case
retention was shortened) and catches up at once after any downtime.
"""

import fcntl
import logging
import os
import sqlite3
import threading
from pathlib import Path

from . import store
from .conversations import Conversations
from .keys import Keyring

log = logging.getLogger("medcell.retention")


def sweep(
    conn: sqlite3.Connection, conversations: Conversations, keyring: Keyring, rotation_seconds: int
) -> dict:
    """One pass: delete the expired, forget stale throttles and sessions, rotate keys if due."""
    now = conversations.clock()
    expired = conversations.delete_expired(conn)
    with store.write(conn):
        conn.execute("DELETE FROM throttle WHERE window_ends <= ?", (now,))
        conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM patient_sessions WHERE expires_at <= ?", (now,))
    rotated = None
    if keyring.rotation_due(conn, rotation_seconds):
        rotated = keyring.rotate(conn)
    return {"expired": expired, "rotated": rotated}


def next_deadline(conn: sqlite3.Connection, conversations: Conversations) -> int | None:
    """When the oldest live conversation expires (µs), or None when there is none."""
    row = conn.execute("SELECT min(last_activity) FROM conversations").fetchone()
    if row[0] is None:
        return None
    return row[0] + conversations.retention(conn) * 1_000_000


class Sweeper:
    """A daemon thread that runs sweep() whenever something is due, while it holds the lock."""

    def __init__(
        self,
        db_path: Path,
        conversations: Conversations,
        keyring: Keyring,
        rotation_seconds: int,
        interval_seconds: float,
    ):
        self.db_path = Path(db_path)
        self.conversations = conversations
        self.keyring = keyring
        self.rotation_seconds = rotation_seconds
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="medcell-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _try_lock(self) -> bool:
        if self._lock_fd is None:
            self._lock_fd = os.open(
                self.db_path.with_name("sweeper.lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            if not self._try_lock():
                self._stop.wait(self.interval)
                continue
            try:
                conn = conn or store.connect(self.db_path)
                result = sweep(conn, self.conversations, self.keyring, self.rotation_seconds)
                if result["expired"] or result["rotated"]:
                    log.info(
                        "sweep",
                        extra={
                            "fields": {
                                "expired_conversations": result["expired"],
                                "key_version": (result["rotated"] or {}).get("version"),
                            }
                        },
                    )
                deadline = next_deadline(conn, self.conversations)
            except Exception:
                log.exception("sweep failed; retrying")
                deadline = None
            pause = self.interval
            if deadline is not None:
                pause = min(pause, max(0.0, (deadline - self.conversations.clock()) / 1e6) + 0.05)
            self._stop.wait(pause)
        if conn is not None:
            conn.close()

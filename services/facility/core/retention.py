"""The deletion job: runs inside the facility's own process, exactly once per facility.

The job is deadline-driven: it sleeps until the next thing it must do — the earliest conversation
expiry (last_activity + retention) or the next daily key rotation — and is woken at once, through
`wake` (a threading.Event), when a conversation is created, activity extends one or the retention
changes. It sweeps once at start, which catches up after any downtime (a sleeping facility is
started by the supervisor shortly before its deadline). An idle facility therefore does nothing.

A file lock in the data directory makes exactly one process work. A facility is one server
process (services/facility/server.py), so the requests that change deadlines wake the job
in-process.
"""

import fcntl
import logging
import os
import sqlite3
import threading

from services.facility.core import store
from services.facility.core.conversations import Conversations
from services.facility.core.keys import Keyring
from services.facility.core.store import Store

log = logging.getLogger("medcell.retention")

# This only bounds how late a step of the wall clock (the deadlines are wall-clock times, the
# wait is monotonic) can make the job: one cheap look per hour.
SAFETY_SECONDS = 3600.0
RETRY_SECONDS = 30.0  # after a failed pass
MARGIN_SECONDS = 0.05  # wake just after the deadline, not just before it


def sweep(
    conn: sqlite3.Connection, conversations: Conversations, keyring: Keyring, rotation_seconds: int
) -> dict:
    """One pass: delete the expired, forget stale throttles, sessions and receipts, rotate keys."""
    now = conversations.clock()
    expired = conversations.delete_expired(conn)
    conversations.receipts.housekeeping(conn)
    with store.write(conn):
        conn.execute("DELETE FROM throttle WHERE window_ends <= ?", (now,))
        conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM patient_sessions WHERE expires_at <= ?", (now,))
    rotated = None
    if keyring.rotation_due(conn, rotation_seconds):
        rotated = keyring.rotate(conn)
    return {"expired": expired, "rotated": rotated}


def expiry_deadline(conn: sqlite3.Connection, conversations: Conversations) -> int | None:
    """When the oldest live conversation expires (µs), or None when there is none."""
    row = conn.execute("SELECT min(last_activity) FROM conversations").fetchone()
    if row[0] is None:
        return None
    return row[0] + conversations.retention(conn) * 1_000_000


def next_deadline(
    conn: sqlite3.Connection, conversations: Conversations, keyring: Keyring, rotation_seconds: int
) -> int | None:
    """The next thing the facility must do by itself (µs): an expiry or the next key rotation."""
    due = [
        expiry_deadline(conn, conversations),
        keyring.next_rotation(conn, rotation_seconds),
    ]
    return min((d for d in due if d is not None), default=None)


class Sweeper:
    """A daemon thread that runs sweep() whenever something is due, while it holds the lock."""

    def __init__(
        self,
        db: Store,
        conversations: Conversations,
        keyring: Keyring,
        rotation_seconds: int,
        safety_seconds: float = SAFETY_SECONDS,
        wake: threading.Event | None = None,
    ):
        self.db = db
        self.conversations = conversations
        self.keyring = keyring
        self.rotation_seconds = rotation_seconds
        self.safety_seconds = safety_seconds
        self.wake_event = wake or threading.Event()
        # What the job plans: the deadline (µs by the clock) it waits for, None when nothing.
        self.planned: int | None = None
        self.passes = 0  # loop iterations done: lets tests wait for "the job looked again"
        self.passed = threading.Condition()
        self._working = True  # until the first sweep after start has finished
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None

    @property
    def busy(self) -> bool:
        """True while a sweep runs and until the first one after start has finished."""
        return self._working

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="medcell-sweeper", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the deadlines again now (they moved)."""
        self.wake_event.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake_event.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the first sweep after start has finished (or `timeout`); whether it has."""
        with self.passed:
            return self.passed.wait_for(lambda: not self._working, timeout)

    def wait_passes(self, count: int, timeout: float) -> bool:
        """Block until the job has finished `count` passes in all (for tests and benchmarks)."""
        with self.passed:
            return self.passed.wait_for(lambda: self.passes >= count, timeout)

    def _try_lock(self) -> bool:
        if self._lock_fd is None:
            self._lock_fd = os.open(
                self.db.path.with_name("sweeper.lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _run(self) -> None:
        conn = None
        first = True
        while not self._stop.is_set():
            # Cleared before reading the deadlines, so a change made meanwhile is not lost.
            self.wake_event.clear()
            if not self._try_lock():
                # Another process runs the job (a second worker, or one shutting down).
                self._working = False
                self._finish_pass(None, self.safety_seconds)
                continue
            pause = self.safety_seconds
            try:
                conn = conn or self.db.connect()
                deadline = self._deadline(conn)
                if first or (deadline is not None and deadline <= self.conversations.clock()):
                    self._working = True
                    self._sweep(conn)
                    deadline = self._deadline(conn)
                first = False
                self._working = False
            except Exception:
                log.exception("sweep failed; retrying")
                deadline, pause = None, min(pause, RETRY_SECONDS)
            if deadline is not None:
                wait = (deadline - self.conversations.clock()) / 1e6 + MARGIN_SECONDS
                pause = min(pause, max(0.0, wait))
            self._finish_pass(deadline, pause)
        if conn is not None:
            conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # a stopped job leaves the work to another process
            self._lock_fd = None

    def _deadline(self, conn: sqlite3.Connection) -> int | None:
        return next_deadline(conn, self.conversations, self.keyring, self.rotation_seconds)

    def _sweep(self, conn: sqlite3.Connection) -> None:
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

    def _finish_pass(self, deadline: int | None, pause: float) -> None:
        self.planned = deadline
        with self.passed:
            self.passes += 1
            self.passed.notify_all()
        self.wake_event.wait(pause)

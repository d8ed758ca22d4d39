"""The facility's SQLite store: connections configured to leave no deleted bytes behind.

Every connection — app, deletion job, admin command — is made here, so each one gets WAL mode,
secure_delete (deleted content is overwritten with zeros, overflow pages included) and a WAL
that is truncated to nothing after each checkpoint.
"""

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.facility.core import migrations
from services.facility.core.errors import StorageFull

if TYPE_CHECKING:
    import sqlite_utils.db

BUSY_TIMEOUT_MS = 5000
FULL_MESSAGE = (
    "The facility's storage is full; nothing was stored. "
    "Deleting conversations makes room, or ask the operator for more space."
)


class Connection(sqlite3.Connection):
    """A connection that knows the Store it belongs to (None: opened on its own), so that its
    writes find the store's space hook and the throttle its key."""

    store: "Store | None" = None


# Each thread's connection keeps a page cache of its own (SQLite's default: 2 MiB each); the
# files are small and in the OS's page cache anyway, so a small one costs no speed (bench/process).
CACHE_KIB = 256


def connect(path: Path) -> sqlite3.Connection:
    """Open the database with the pragmas that make deletion complete."""
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=Connection,
    )
    _use_wal(conn)
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA journal_size_limit=0")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # A killed process loses nothing it acknowledged with NORMAL in WAL mode; only a power
    # failure could cost the last transactions, and FULL would halve write throughput.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL; on a new file several first connections race for it.

    While one of them converts the file, SQLite answers the others "database is locked" at once,
    without waiting for the busy timeout, so wait for it here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction that takes the write lock up front (no upgrade deadlocks).

    A full volume (SQLITE_FULL, which is how SQLite reports ENOSPC) becomes StorageFull, with
    the transaction rolled back: nothing of it is stored.
    """
    owner = getattr(conn, "store", None)
    if owner is not None and owner.before_write is not None:
        owner.before_write()
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back by itself after SQLITE_FULL.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as e:
        if not is_full(e):
            raise
        release_wal(conn)
        raise StorageFull(FULL_MESSAGE) from e


def is_full(error: BaseException) -> bool:
    """True for SQLite's "database or disk is full"."""
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def settle(conn: sqlite3.Connection) -> None:
    """Copy committed pages from the WAL into the database now, without waiting for readers.

    After a large write, while the room that was checked for it is still there: left in the WAL,
    the pages would need that room again later, perhaps when the volume has filled up.
    """
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def release_wal(conn: sqlite3.Connection) -> None:
    """Give back the space a failed transaction left in the WAL (best effort, never raises)."""
    # The frames of a rolled-back transaction stay in the WAL file until a checkpoint resets it.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


def tally(conn: sqlite3.Connection, name: str, n: int) -> None:
    """Add n to a content-free counter (how many, never which), inside the caller's write."""
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        (name, n),
    )


def table(conn: sqlite3.Connection, name: str) -> "sqlite_utils.db.Table":
    """A sqlite-utils view of one table, for the simple reads and upserts outside hot paths."""
    # Imported on first use (admin pages only): it pulls in dateutil, pluggy and more, a few MiB
    # that an idle facility would otherwise hold.
    import sqlite_utils

    return sqlite_utils.Database(conn)[name]


def checkpoint(conn: sqlite3.Connection, attempts: int = 40) -> bool:
    """Move the WAL into the database and truncate it to zero bytes; True once that took.

    A reader that still uses the WAL blocks the truncation, so retry with a growing pause.
    Copying committed pages into a database file that must grow can meet a full volume:
    that is StorageFull (the pages stay safe in the WAL).
    """
    for attempt in range(attempts):
        try:
            row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as e:
            if not is_full(e):
                raise
            raise StorageFull(FULL_MESSAGE) from e
        if tuple(row) == (0, 0, 0):
            return True
        time.sleep(min(0.005 * (attempt + 1), 0.1))
    return False


def _create_owner_only(path: Path) -> None:
    """Create a new database file owner-only before SQLite does; its WAL and shm inherit the mode.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock this process holds on it, those of open SQLite connections included. Another process
    (a management command) would then take itself for the last connection and remove the WAL
    under this one, whose next read fails (SQLITE_IOERR_SHORT_READ) for as long as it lives.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """Per-thread connections to one facility database, and what its connections share."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # Runs before every write transaction (core/space keeps headroom there).
        self.before_write: Callable[[], None] | None = None
        # What the throttle names this database's rows with (core/throttle).
        self.throttle_key: bytes | None = None
        # The lock file this facility's processes take turns on for a password hash
        # (core/passwords); None: only the threads of this process take turns.
        self.hash_lock: Path | None = None
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def migrate(self, keyring: Any = None) -> int:
        """Bring the schema up to date; returns the version now in force.

        Steps that re-seal data need the keys: without `keyring` the schema stops before them.
        """
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_owner_only(self.path)
        conn = connect(self.path)
        try:
            return migrations.apply(conn, keyring)
        finally:
            conn.close()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use and kept for the thread's life."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def connect(self) -> sqlite3.Connection:
        """A new connection of the caller's own (not this thread's), with the store's hooks."""
        conn = connect(self.path)
        conn.store = self
        return conn

    def release_page_cache(self) -> None:
        """Let the kernel drop the pages of the database files it holds in its page cache.

        An export reads every photo of a conversation; those pages, read a second time, stay as
        active page cache charged to the facility's container (what `docker stats` counts) until
        it sleeps. Dropped here after an export: the next request reads what it needs from disk
        again. Pages not yet written back (the WAL's newest) stay; they are written and freed by
        the kernel in its own time."""
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # no WAL at the moment
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

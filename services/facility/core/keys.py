"""Key-encryption keys (KEKs): versioned files in the key directory, never in the data directory.

Each record key is stored wrapped by one KEK version. Rotation makes a new version, rewraps every
record key under it (payloads stay untouched) and then destroys the old versions, so any stray copy
of a wrapped key — a backup, a disk remnant — can no longer be opened (crypto-shredding).
"""

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from services.facility.core import crypto, store
from services.facility.core.errors import ConfigError, KeyDestroyed

KEK_FILE = re.compile(r"^kek-(\d{6})\.key$")
# The Ed25519 key that signs deletion receipts: beside the KEKs, never in the data directory.
SIGNING_KEY_FILE = "receipt-signing.key"
# The HMAC key of the facility's tombstones (core/tombstones.py): beside the KEKs, so it outlives
# the database a restore replaces, and carried in every backup, so a restored facility has it.
TOMBSTONE_KEY_FILE = "tombstone.key"
REWRAP_BATCH = 500


class Keyring:
    """The facility's KEK versions and the record keys wrapped by them."""

    def __init__(self, key_dir: Path, facility: str, clock: Callable[[], int]):
        self.key_dir = Path(key_dir)
        self.facility = facility
        self.clock = clock
        self._cache: dict[int, bytes] = {}
        self._signing_seed: bytes | None = None
        self._tombstone_key: bytes | None = None
        self._cache_lock = threading.Lock()

    # -- start-up -------------------------------------------------------------------------

    def ensure(self, conn: sqlite3.Connection) -> None:
        """Make the first KEK if there is none; refuse to start if a needed one is missing."""
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._file_lock():
            if not self._live_versions(conn):
                self._create_version(conn)
            if not (self.key_dir / SIGNING_KEY_FILE).exists():
                _write_secret(self.key_dir / SIGNING_KEY_FILE, crypto.new_signing_seed())
            if not (self.key_dir / TOMBSTONE_KEY_FILE).exists():
                _write_secret(self.key_dir / TOMBSTONE_KEY_FILE, crypto.new_key())
            missing = [v for v in self._live_versions(conn) if not self._path(v).exists()]
        if missing:
            raise ConfigError(
                f"key directory {self.key_dir} lacks key version(s) {missing} that the database "
                "needs: is the right key volume mounted?"
            )

    # -- record keys ----------------------------------------------------------------------

    def new_record_key(
        self, conn: sqlite3.Connection, record_id: str, conversation_id: str
    ) -> bytes:
        """A fresh record key, stored wrapped by the active KEK. Call inside a write transaction."""
        version = max(self._live_versions(conn))
        key = crypto.new_key()
        wrapped = crypto.wrap(self.kek(version), key, self._aad(record_id, version))
        conn.execute(
            "INSERT INTO record_keys (record_id, conversation_id, kek_version, wrapped) "
            "VALUES (?, ?, ?, ?)",
            (record_id, conversation_id, version, wrapped),
        )
        return key

    def record_key(self, conn: sqlite3.Connection, record_id: str) -> bytes:
        """Unwrap the key of one record."""
        row = conn.execute(
            "SELECT kek_version, wrapped FROM record_keys WHERE record_id = ?", (record_id,)
        ).fetchone()
        if row is None:
            raise KeyDestroyed("The record's key is gone.")
        return self.unwrap(record_id, *row)

    def unwrap(self, record_id: str, version: int, wrapped: bytes) -> bytes:
        """Unwrap a record key read together with its record (saves a query per record)."""
        return crypto.unwrap(self.kek(version), wrapped, self._aad(record_id, version))

    def kek(self, version: int) -> bytes:
        with self._cache_lock:
            key = self._cache.get(version)
        if key is None:
            try:
                key = self._path(version).read_bytes()
            except FileNotFoundError as e:
                raise KeyDestroyed(f"Key version {version} has been destroyed.") from e
            if len(key) != crypto.KEY_BYTES:
                raise ConfigError(f"key file for version {version} is damaged")
            with self._cache_lock:
                self._cache[version] = key
        return key

    def signing_seed(self) -> bytes:
        """The facility's receipt-signing key (made by ensure())."""
        with self._cache_lock:
            seed = self._signing_seed
        if seed is None:
            try:
                seed = (self.key_dir / SIGNING_KEY_FILE).read_bytes()
            except FileNotFoundError as e:
                raise KeyDestroyed("The receipt-signing key has been destroyed.") from e
            if len(seed) != 32:
                raise ConfigError("the receipt-signing key file is damaged")
            with self._cache_lock:
                self._signing_seed = seed
        return seed

    def tombstone_key(self) -> bytes:
        """The key that makes a conversation id into its tombstone's mark (made by ensure())."""
        with self._cache_lock:
            key = self._tombstone_key
        if key is None:
            try:
                key = (self.key_dir / TOMBSTONE_KEY_FILE).read_bytes()
            except FileNotFoundError as e:
                raise KeyDestroyed("The tombstone key has been destroyed.") from e
            if len(key) != crypto.KEY_BYTES:
                raise ConfigError("the tombstone key file is damaged")
            with self._cache_lock:
                self._tombstone_key = key
        return key

    def replace_tombstone_key(self, key: bytes) -> None:
        """Put a backup's tombstone key in place of this one (a restore)."""
        if len(key) != crypto.KEY_BYTES:
            raise ConfigError("a tombstone key to restore is not 32 bytes")
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._file_lock():
            _write_secret(self.key_dir / TOMBSTONE_KEY_FILE, key)
        with self._cache_lock:
            self._tombstone_key = None

    # -- rotation -------------------------------------------------------------------------

    def next_rotation(self, conn: sqlite3.Connection, interval_seconds: int) -> int:
        """When the active KEK is due for rotation (µs); now if there is none."""
        row = conn.execute(
            "SELECT max(created_at) FROM kek_versions WHERE destroyed_at IS NULL"
        ).fetchone()
        return self.clock() if row[0] is None else row[0] + interval_seconds * 1_000_000

    def rotation_due(self, conn: sqlite3.Connection, interval_seconds: int) -> bool:
        return self.next_rotation(conn, interval_seconds) <= self.clock()

    def busy(self) -> bool:
        """True while any process changes the keys (a rotation, also one run by `rotate-key`)."""
        try:
            fd = os.open(self.key_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def rotate(self, conn: sqlite3.Connection) -> dict:
        """New KEK version; rewrap every record key under it; destroy the versions left unused."""
        with self._file_lock():
            new = self._create_version(conn)
            rewrapped = 0
            while True:
                with store.write(conn):
                    rows = conn.execute(
                        "SELECT record_id, kek_version, wrapped FROM record_keys "
                        "WHERE kek_version < ? LIMIT ?",
                        (new, REWRAP_BATCH),
                    ).fetchall()
                    for record_id, version, wrapped in rows:
                        key = crypto.unwrap(
                            self.kek(version), wrapped, self._aad(record_id, version)
                        )
                        rewrapped_key = crypto.wrap(self.kek(new), key, self._aad(record_id, new))
                        conn.execute(
                            "UPDATE record_keys SET kek_version = ?, wrapped = ? "
                            "WHERE record_id = ?",
                            (new, rewrapped_key, record_id),
                        )
                    rewrapped += len(rows)
                    # Writers pick the active version inside their own write transaction, so
                    # once none is left under an old version while we hold the lock, none will be.
                    destroyed = self._destroy_older(conn, new) if not rows else []
                if not rows:
                    break
            store.checkpoint(conn)
        return {"version": new, "rewrapped": rewrapped, "destroyed": destroyed}

    def shred_all(self) -> int:
        """Overwrite and remove every KEK file: all data under them becomes unreadable."""
        count = 0
        with self._file_lock():
            for path in sorted(self.key_dir.iterdir()):
                if (
                    KEK_FILE.match(path.name)
                    or path.name in (SIGNING_KEY_FILE, TOMBSTONE_KEY_FILE)
                    or path.name.endswith(".tmp")
                ):
                    _shred(path)
                    count += 1
        with self._cache_lock:
            self._cache.clear()
            self._signing_seed = None
            self._tombstone_key = None
        return count

    # -- backup and restore ---------------------------------------------------------------

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Hold off key changes by every process, so keys and data can be copied as one."""
        with self._file_lock():
            yield

    def export(self, versions: list[int]) -> dict[int, bytes]:
        """The raw KEKs of these versions (a backup seals them at once)."""
        return {version: self.kek(version) for version in versions}

    def replace_all(self, keks: dict[int, bytes]) -> None:
        """Destroy every KEK here and put these versions in their place (a restore)."""
        for key in keks.values():
            if len(key) != crypto.KEY_BYTES:
                raise ConfigError("a key to restore is not 32 bytes")
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._file_lock():
            for path in sorted(self.key_dir.iterdir()):
                if KEK_FILE.match(path.name) or path.name.endswith(".tmp"):
                    _shred(path)
            for version, key in sorted(keks.items()):
                _write_secret(self._path(version), key)
        with self._cache_lock:
            self._cache.clear()

    # -- internals ------------------------------------------------------------------------

    def _live_versions(self, conn: sqlite3.Connection) -> list[int]:
        rows = conn.execute("SELECT version FROM kek_versions WHERE destroyed_at IS NULL")
        return [r[0] for r in rows]

    def _create_version(self, conn: sqlite3.Connection) -> int:
        with store.write(conn):
            row = conn.execute("SELECT coalesce(max(version), 0) FROM kek_versions").fetchone()
            version = row[0] + 1
            path = self._path(version)
            if path.exists():  # left by a crash between writing the file and recording it
                _shred(path)
            _write_secret(path, crypto.new_key())
            conn.execute(
                "INSERT INTO kek_versions (version, created_at) VALUES (?, ?)",
                (version, self.clock()),
            )
        return version

    def _destroy_older(self, conn: sqlite3.Connection, keep: int) -> list[int]:
        old = [v for v in self._live_versions(conn) if v < keep]
        for version in old:
            _shred(self._path(version))
            conn.execute(
                "UPDATE kek_versions SET destroyed_at = ? WHERE version = ?",
                (self.clock(), version),
            )
        with self._cache_lock:
            for version in old:
                self._cache.pop(version, None)
        return old

    def _aad(self, record_id: str, version: int) -> bytes:
        return crypto.aad(self.facility, "record_keys", record_id, f"kek{version}")

    def _path(self, version: int) -> Path:
        return self.key_dir / f"kek-{version:06d}.key"

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise key changes across the processes that share this key directory."""
        fd = os.open(self.key_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _shred(path: Path) -> None:
    """Overwrite a key file in place before unlinking it, so its blocks do not keep the key."""
    try:
        size = path.stat().st_size
        with open(path, "r+b", buffering=0) as f:
            f.write(os.urandom(size))
            os.fsync(f.fileno())
            f.seek(0)
            f.write(b"\0" * size)
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

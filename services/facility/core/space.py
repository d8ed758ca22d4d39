"""Room on the data volume: a reserve that keeps deletion possible on a full disk.

SQLite in WAL mode writes every change to the WAL first, and secure_delete writes every freed
page there too (as zeros) before a checkpoint copies it into the database file. So deleting
needs free space about the size of what it deletes, exactly when the volume is full. Two rules
keep that possible:

- new content is admitted only while the reserve file below is whole and the volume has room
  for the content twice (WAL, then database) plus HEADROOM_BYTES; and
- a file of `reserve` bytes is held in the data directory. When the volume is all but full
  anyway (something else filled it), the file is given up before the next write, so that
  logins, bookkeeping and deletions go on; a deletion that still meets a full volume gives it
  up and runs again. Deleting never grows the database file, so the reserve is made whole
  again afterwards whenever the space it freed is still there.
"""

import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from services.facility.core.errors import StorageFull

T = TypeVar("T")
RESERVE_NAME = "space.reserve"
_WRITE_PIECE = 256 * 1024
# Besides a write's own bytes: its pages' overhead, the index updates and the WAL's frame headers.
OVERHEAD_FACTOR = 1.1
OVERHEAD_BYTES = 256 * 1024
# Below this much free space the reserve is given up before any write (a login, a deletion), so
# bookkeeping and deletion go on when something else filled the volume; new content is refused
# until the reserve can be made whole again.
HEADROOM_BYTES = 1024 * 1024

FULL_MESSAGE = (
    "The facility's storage is almost full; nothing was stored. "
    "Deleting conversations makes room, or ask the operator for more space."
)


class Space:
    """The data volume's free space and the reserve file that keeps deletion working."""

    def __init__(self, data_dir: Path, reserve_bytes: int):
        self.data_dir = Path(data_dir)
        self.reserve_bytes = reserve_bytes
        self.path = self.data_dir / RESERVE_NAME
        self._lock = threading.Lock()

    def free_bytes(self) -> int:
        """Bytes an unprivileged process may still write on the data volume."""
        st = os.statvfs(self.data_dir)
        return st.f_bavail * st.f_frsize

    def reserve_held(self) -> int:
        """How many bytes of the reserve file are really allocated on the volume."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return 0
        # Allocated blocks, not the apparent size: a sparse file would reserve nothing.
        return min(st.st_size, st.st_blocks * 512)

    def ensure_reserve(self) -> bool:
        """Make the reserve file whole again if the volume has room; True if it is whole."""
        with self._lock:
            held = self.reserve_held()
            if held >= self.reserve_bytes:
                return True
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            except OSError:
                return False
            try:
                os.lseek(fd, held, os.SEEK_SET)
                zeros = bytes(_WRITE_PIECE)
                remaining = self.reserve_bytes - held
                while remaining > 0:
                    remaining -= os.write(fd, zeros[: min(remaining, _WRITE_PIECE)])
                os.fsync(fd)
                return True
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # Keep nothing half-made: a partial reserve would only hide free space.
                os.ftruncate(fd, held)
                return False
            finally:
                os.close(fd)

    def release_reserve(self) -> None:
        """Give the reserve's bytes back to the volume (for a deletion that found it full)."""
        with self._lock, contextlib.suppress(FileNotFoundError):
            os.truncate(self.path, 0)

    def admit(self, conn: sqlite3.Connection, nbytes: int) -> None:
        """StorageFull unless `nbytes` of new content fits and leaves the reserve's room free."""
        if not self.ensure_reserve():
            raise StorageFull(FULL_MESSAGE)
        need = int(nbytes * OVERHEAD_FACTOR) + OVERHEAD_BYTES
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        reusable = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
        # The WAL needs room for the new pages; the database file grows only by what its free
        # pages cannot take.
        if self.free_bytes() < need + max(0, need - reusable) + HEADROOM_BYTES:
            raise StorageFull(FULL_MESSAGE)

    def keep_headroom(self) -> None:
        """Before a write: give up the reserve if the volume is all but full."""
        if self.free_bytes() < HEADROOM_BYTES and self.reserve_held():
            self.release_reserve()

    def make_room(self, action: Callable[[], T]) -> T:
        """Run a deletion; if the volume is full, give up the reserve and run it once more."""
        try:
            return action()
        except StorageFull:
            self.release_reserve()
            return action()
        finally:
            self.ensure_reserve()

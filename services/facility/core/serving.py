"""One process serves a facility's data at a time: an exclusive lock on its data volume.

On a cluster node that comes back after its link was cut, Swarm starts the facility's new task
seconds before it stops the old container, both on that node and on the one data volume (measured:
~11 s). Two processes serving one database would each run the deletion job and each answer on
the socket; so the server takes this lock (an fcntl lock on a file in the data volume) before it
touches the socket, the database or the deletion job, and holds it for its whole life. A second
process on the same volume waits for it, serving nothing and logging `serving_lock_wait` once,
and takes over when the first one has ended (its lock goes with its process, however it ended).
"""

import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("medcell.facility")

LOCK_FILE = "serving.lock"
POLL_SECONDS = 0.5


class ServingLock:
    """The data volume's serving lock (`acquire`, then held until `release` or the process ends)."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; never waits."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, stopping: Callable[[], bool], poll: float = POLL_SECONDS) -> bool:
        """Wait until the lock is this process's (True), or until `stopping()` (False)."""
        waited = False
        while not self.try_acquire():
            if not waited:
                log.warning("serving_lock_wait", extra={"fields": {"reason": "held_by_another"}})
                waited = True
            if stopping():
                log.warning("serving_lock_not_taken", extra={"fields": {"reason": "stopping"}})
                return False
            time.sleep(poll)
        if waited:
            log.warning("serving_lock_taken")
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

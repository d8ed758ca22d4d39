"""Per-facility locks: two commands on one facility run one after the other.

On one host a lock is an flock on $MEDCELL_HOME/locks/<slug>.lock, released by the kernel when
its holder dies. Everything that changes a facility on a host (the CLI's commands, the
supervisor's sleeps and wakes, a node API's steps) goes through `facility_lock`. The file names
its holder, so a command that waits too long can say who holds it.

`FacilityLocks` is the one interface of a command's lock on a facility: `HostLocks` here on one
host, `SwarmLocks` (host/cluster_locks.py) across a cluster's managers.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from medcell_common.times import iso_utc
from provisioner.host.config import Config
from provisioner.host.errors import Busy

LOCK_POLL_SECONDS = 0.05
# A CLI command waits this long for another command on the same facility (a backup of a full
# facility takes minutes); then it gives up, naming what holds the facility.
COMMAND_WAIT = 600.0
HOLDER_BYTES = 200  # what is read of a holder's description (any local process can write it)

_holder = "a medcell command"


def set_holder(description: str) -> None:
    """How this process names itself in the locks it holds (`medcell facility backup`)."""
    global _holder
    _holder = description


def holder() -> str:
    """How this process names itself in the locks it holds."""
    return _holder


@runtime_checkable
class FacilityLocks(Protocol):
    """A command's lock on one facility: two holders of one slug run one after the other."""

    def hold(
        self, slug: str, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> AbstractContextManager[None]:
        """Held inside the `with`; Busy, naming the holder, if not free within `wait` s.
        `on_wait` hears once that another holds it and this one waits."""


class HostLocks:
    """The single host's locks: flocks in $MEDCELL_HOME/locks (`facility_lock`)."""

    def __init__(self, config: Config):
        self.config = config

    def hold(
        self, slug: str, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> AbstractContextManager[None]:
        return facility_lock(self.config, slug, wait, on_wait)


def _locks_dir(config: Config) -> Path:
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.locks_dir.mkdir(mode=0o700, exist_ok=True)
    return config.locks_dir


@contextmanager
def facility_lock(
    config: Config,
    slug: str,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the facility's lock; Busy (naming the holder) if it is not free within `wait` s.

    `on_wait` hears once that the lock is held and this one waits for it. The lock file is
    removed on release, so a deleted facility leaves no file named after it.
    """
    path = _locks_dir(config) / f"{slug}.lock"
    deadline = time.monotonic() + wait
    told = on_wait is None
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A holder may have just unlinked the file we opened; then ours locks nothing.
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except (BlockingIOError, FileNotFoundError):
            pass
        handle.close()
        if time.monotonic() >= deadline:
            raise Busy(_busy_message(path, slug, wait))
        if not told:
            told = True
            on_wait(f"facility {slug} is held by {_holder_of(path)}; waiting up to {wait:g} s")
        time.sleep(LOCK_POLL_SECONDS)
    try:
        handle.truncate(0)
        handle.write(f"{_holder} (pid {os.getpid()}) since {iso_utc()}")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def _holder_of(path: Path) -> str:
    """What the holder wrote into the lock file (it may not have written anything yet)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(HOLDER_BYTES)
    except OSError:
        raw = b""
    who = "".join(c for c in raw.decode("utf-8", "replace") if c.isprintable()).strip()
    return who or "another medcell command"


def _busy_message(path: Path, slug: str, wait: float) -> str:
    who = _holder_of(path)
    if wait <= 0:
        return f"facility {slug} is being changed by {who}"
    return f"facility {slug} is still held by {who}; gave up after waiting {wait:g} s"

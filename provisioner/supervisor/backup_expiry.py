"""Destroys backup keys when their backups expire, so no copy of an expired backup ever opens;
collects the facilities' tombstones and forgets those that no restorable backup needs any more.

The supervisor always runs, so it is the one that keeps this deadline; the CLI checks again
before any restore. The key directory is read at most once a minute (backups expire days after
they are made), and between reads only the earliest expiry is compared with the clock.

On a cluster node what it collects also goes to every manager (supervisor/tombstone_push.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from provisioner.host import backup_keys, tombstones
from provisioner.host.config import Config
from provisioner.supervisor.logs import event
from provisioner.supervisor.tombstone_push import TombstonePush

RESCAN_SECONDS = 60.0


class BackupExpiry:
    """Call `tick()` from the supervisor's loop; it destroys keys within a tick of expiry."""

    def __init__(
        self, config: Config, clock: Callable[[], float], push: TombstonePush | None = None
    ):
        self.config, self.clock, self.push = config, clock, push
        self.tombstones: tombstones.TombstoneStore = (
            tombstones.FileTombstones(config)
            if push is None
            else tombstones.ReplicatingTombstones(config)
        )
        self._next_scan = 0.0
        self._next_expiry: float | None = None

    def tick(self) -> None:
        now = self.clock()
        if now < self._next_scan and (self._next_expiry is None or now < self._next_expiry):
            return
        try:
            for gone in backup_keys.destroy_expired(self.config, now):
                # The backup id and slug only: what the backup's own manifest says in the clear.
                event("backup_key_destroyed", slug=gone.facility, backup_id=gone.backup_id)
            self._next_expiry = backup_keys.next_expiry(self.config)
        except OSError as e:
            event("backup_expiry_failed", logging.WARNING, error=type(e).__name__)
            self._next_expiry = None
        self._tombstones(now)
        self._next_scan = now + RESCAN_SECONDS

    def _tombstones(self, now: float) -> None:
        """Collect what the facilities dropped; forget what no restorable backup needs."""
        try:
            collected = tombstones.collect_all(self.config, self.tombstones)
            forgotten = tombstones.expire(
                self.config, self.tombstones, now, cluster=self.push is not None
            )
        except (OSError, ValueError) as e:
            event("tombstones_failed", logging.WARNING, error=type(e).__name__)
            return
        if self.push is not None:
            self.push.start()  # to every manager, in its own thread
        if collected or forgotten:
            # Counts only: a tombstone's mark is nobody's business in a log.
            event("tombstones", collected=collected, forgotten=forgotten)

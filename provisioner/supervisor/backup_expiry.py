"""Destroys backup keys when their backups expire, so no copy of an expired backup ever opens.

The supervisor always runs, so it is the one that keeps this deadline; the CLI checks again
before any restore. The key directory is read at most once a minute (backups expire days after
they are made), and between reads only the earliest expiry is compared with the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from provisioner.host import backup_keys
from provisioner.host.config import Config
from provisioner.supervisor.logs import event

RESCAN_SECONDS = 60.0


class BackupExpiry:
    """Call `tick()` from the supervisor's loop; it destroys keys within a tick of expiry."""

    def __init__(self, config: Config, clock: Callable[[], float]):
        self.config, self.clock = config, clock
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
        self._next_scan = now + RESCAN_SECONDS

"""A worker's hold on a facility's cluster lock, through a manager's node API.

The cluster's locks live in the managers' Raft store (host/cluster_locks.py), which a worker's
engine cannot reach. Its supervisor asks a manager (host/manager_swarm.py, any that answers) to
take the lock for it, renews it every quarter lease while it works, and releases it after; a
worker that dies or loses every manager leaves a lock that expires after its lease, as any
holder's does. The manager takes it only for a facility pinned to the asking node or one whose
copy there is stale, and says which once it holds it (`hold` yields that answer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from provisioner.host.cluster_locks import LEASE_SECONDS, POLL_SECONDS, RELEASE_ATTEMPTS
from provisioner.host.errors import Busy, DockerError, NodeError
from provisioner.host.manager_swarm import ManagerSwarm


class RemoteLocks:
    """Facility locks held for this node by a manager (see the module's docstring)."""

    def __init__(
        self,
        managers: ManagerSwarm,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        lease: float = LEASE_SECONDS,
    ):
        self.managers, self.clock, self.sleep, self.lease = managers, clock, sleep, lease

    @contextmanager
    def hold(
        self, slug: str, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[dict]:
        """Hold the facility's lock: {"slug", "lock", "node", "stale"} as the manager took it;
        Busy if another holds it beyond `wait`, DockerError if no manager answers."""
        deadline = self.clock() + wait
        while True:
            try:
                taken = self.managers.take_lock(slug)
                break
            except Busy as e:
                if self.clock() >= deadline:
                    raise
                if on_wait is not None:
                    on_wait(str(e))
                    on_wait = None
                self.sleep(POLL_SECONDS)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(slug, taken["lock"], stop), daemon=True
        )
        renewer.start()
        try:
            yield taken
        finally:
            stop.set()
            renewer.join()
            self._release(slug, taken["lock"])

    def _renew(self, slug: str, lock: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 4):
            try:
                self.managers.renew_lock(slug, lock)
            except DockerError as e:
                if getattr(e.__cause__, "code", "") == "lock_lost":
                    return  # taken over (this node was too slow to renew): nothing to renew
                # No manager answers now: the next quarter lease tries again.

    def _release(self, slug: str, lock: str) -> None:
        """Released through any manager, tried again for a few seconds (an election); if none
        answers, the lock expires after its lease."""
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                self.managers.release_lock(slug, lock)
                return
            except (DockerError, NodeError):
                if attempt + 1 < RELEASE_ATTEMPTS:
                    self.sleep(1.0)

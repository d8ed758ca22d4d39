"""A cluster node hands the tombstones it collected to every manager, so that each deletion's
tombstone outlives the loss of the facility's node (host/tombstones.py).

What this node collected waits in its outbox until every manager (as this node's engine knows
them, a worker's too) took it through its node API: POST /v1/tombstones, at most MAX_TOMBSTONES
a request, idempotent (a manager keeps each mark once), so anything not acknowledged is simply
sent again the next round. A round runs in its own thread, one at a time, off the supervisor's
loop: a manager cut off costs that thread its timeout, never a deadline of this node's. What
waits longer than any backup can live is of no use to anyone and goes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from provisioner.host import tombstones
from provisioner.host.config import Config
from provisioner.host.errors import ProvisionerError
from provisioner.host.node_api import MAX_TOMBSTONES, NodeClient
from provisioner.supervisor.logs import event

PUSH_TIMEOUT = 10.0  # one manager's answer

# This node's address and the managers' (host/swarm.py Swarm.manager_addresses).
Managers = Callable[[], tuple[str, list[str]]]
ClientFactory = Callable[..., NodeClient]


class TombstonePush:
    """Call `start()` after each collection; `run_once()` is one round, in the caller's thread."""

    def __init__(
        self,
        config: Config,
        managers: Managers,
        tls_dir: Path,
        clock: Callable[[], float],
        client: ClientFactory = NodeClient,
    ):
        self.config, self.managers, self.tls_dir = config, managers, tls_dir
        self.clock, self.client = clock, client
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A round in its own thread, unless one still runs."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._round, name="tombstone-push", daemon=True)
        self._thread.start()

    def _round(self) -> None:
        try:
            self.run_once()
        except Exception as e:  # one bad round must not end the thread's future rounds
            event("tombstones_push_failed", logging.WARNING, error=type(e).__name__)

    def run_once(self) -> dict:
        """Push every facility's waiting tombstones to every other manager; forget those every
        one of them took. Returns {"pushed": slugs done, "waiting": slugs kept, "missed": …}."""
        outbox = tombstones.outbox(self.config)
        stale_before = self.clock() - tombstones.BACKUP_LIFETIME
        slugs = outbox.slugs()
        for slug in slugs:
            outbox.prune(slug, stale_before)
        slugs = outbox.slugs()
        if not slugs:
            return {"pushed": [], "waiting": [], "missed": {}}
        try:
            own, managers = self.managers()
        except ProvisionerError as e:
            event("tombstones_push_waits", logging.WARNING, reason="no_engine")
            return {"pushed": [], "waiting": slugs, "missed": {"": str(e)[:200]}}
        targets = [m for m in managers if m != own]  # this host's own store has them already
        missed: dict[str, str] = {}
        pushed, waiting = [], []
        for slug in slugs:
            items = outbox.since(slug, float("-inf"))
            ok = True
            for address in targets:
                if address in missed or not self._push(address, slug, items, missed):
                    ok = False
            if ok:
                outbox.forget(slug, {t["mark"] for t in items})
                pushed.append(slug)
            else:
                waiting.append(slug)
        if pushed or missed:
            # Counts and node addresses only: no mark ever leaves the store in a log line.
            event(
                "tombstones_pushed",
                facilities=len(pushed),
                waiting=len(waiting),
                missed=",".join(sorted(missed)),
            )
        return {"pushed": pushed, "waiting": waiting, "missed": missed}

    def _push(self, address: str, slug: str, items: list[dict], missed: dict[str, str]) -> bool:
        try:
            node = self.client(address, self.tls_dir, timeout=PUSH_TIMEOUT)
            for start in range(0, len(items), MAX_TOMBSTONES):
                node.add_tombstones(slug, items[start : start + MAX_TOMBSTONES])
        except ProvisionerError as e:
            missed[address] = str(e)[:200]  # not asked again this round
            return False
        return True

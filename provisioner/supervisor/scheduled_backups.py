"""Scheduled backups in cluster mode (`MEDCELL_BACKUP_EVERY`): each node's supervisor backs up the
facilities pinned to its node and stores each backup on another node, its key on every manager.
A worker, whose engine answers no Swarm call, asks a manager's node API (host/manager_swarm.py)
for its facilities, the ready nodes and each facility's cluster lock; the rest is the same.

So that a node lost for good can be evacuated (`medcell node evacuate`), a facility's backups must
not live on its own node: the sealed files go to one other ready node (the same one for a
facility while the nodes stay the same, which keeps its newest two there), and the key, made
here, is handed to every manager's node API and never written anywhere else; each manager's
supervisor destroys it at expiry, as on one host. A round runs in its own thread, one facility at
a time, so a large backup never holds up the supervisor's loop (its sleeps, wakes, deadlines).
Each backup holds the facility's cluster lock (host/cluster_locks.py), so it never races a
command on the facility (a `facility move` releasing this node's copy, say); a facility another
command holds is skipped, logged, and backed up at a later round.
Every node, scheduled backups or not, drops the held backups whose expiry has passed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable

from provisioner.host import backup_keys, backup_transfer, locks
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import Busy, ProvisionerError
from provisioner.host.manager_swarm import ManagerSwarm
from provisioner.host.node_api import NodeClient
from provisioner.host.remote_locks import RemoteLocks
from provisioner.host.swarm import NodeInfo, Swarm, SwarmConfigs
from provisioner.supervisor.logs import event
from provisioner.supervisor.node_api import node_tls_dir

CHECK_SECONDS = 60.0  # how often a round looks for facilities due (and for held ones expired)
KEEP = 2  # scheduled backups of one facility kept on the node that stores them


class ScheduledBackups:
    """Call `tick()` from the supervisor's loop."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        swarm: Callable[[], Swarm | None],
        clock: Callable[[], float] = time.time,
        client: Callable[..., NodeClient] = NodeClient,
        remote: Callable[[], ManagerSwarm | None] = lambda: None,
    ):
        self.config, self.backend, self.swarm, self.clock = config, backend, swarm, clock
        self.remote = remote  # on a worker: the same calls, through a manager's node API
        self.client = client
        self.every = config.backup_every
        self.check_seconds = min(CHECK_SECONDS, float(self.every or CHECK_SECONDS))
        self._next = 0.0
        self._last: dict[str, float] = {}  # slug -> when its last scheduled backup was made
        self._round: threading.Thread | None = None

    def tick(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.check_seconds
        try:
            for backup_id in backup_transfer.drop_expired(self.config, now):
                event("held_backup_expired", backup_id=backup_id)
        except OSError as e:
            event("held_backup_expiry_failed", logging.WARNING, error=type(e).__name__)
        swarm = self.swarm()
        if not self.every or swarm is None:
            return
        if self._round is not None and self._round.is_alive():
            return
        self._round = threading.Thread(
            target=self.run_round, args=(swarm,), name="scheduled-backups", daemon=True
        )
        self._round.start()

    def ages(self) -> dict[str, float]:
        """Seconds since each facility's last scheduled backup here (medcell_backup_age_seconds);
        only facilities this node backs up, once a round has looked at them."""
        now = self.clock()
        return {slug: max(0.0, now - last) for slug, last in dict(self._last).items()}

    def run_round(self, swarm: Swarm) -> int:
        """Back up every facility pinned here whose last backup is `every` old; how many."""
        try:
            state = swarm.local_state()
            view = swarm if state["manager"] else self.remote()
            if view is None:
                return 0
            nodes, services = view.nodes(), view.facility_services()
        except ProvisionerError as e:
            event("scheduled_backups_waiting", reason=type(e).__name__)
            return 0
        # A worker's name as the managers know it (the one its services are pinned by).
        me = view.node if isinstance(view, ManagerSwarm) else state["name"]
        cluster_locks = self.cluster_locks(view)
        done = 0
        for slug in sorted(s.slug for s in services if s.node == me and s.slug):
            if not self._due(slug):
                continue
            try:
                # Never waits: a command on the facility (a move, a delete) goes first, and
                # this round goes on with the next facility; a later round comes back to it.
                with cluster_locks.hold(slug):
                    self.backup(slug, me, nodes)
                done += 1
            except Busy:
                event("scheduled_backup_deferred", slug=slug, reason="busy")
            except (ProvisionerError, OSError) as e:
                # The reason's kind only: a facility's output is nobody's business in a log.
                event("scheduled_backup_failed", logging.WARNING, slug=slug, error=type(e).__name__)
        return done

    def cluster_locks(self, swarm: Swarm) -> locks.FacilityLocks:
        """The cluster's facility locks, in the managers' Raft store (a worker's: held for it
        by a manager)."""
        if isinstance(swarm, ManagerSwarm):
            return RemoteLocks(swarm)
        return SwarmLocks(self.config, SwarmConfigs(swarm.client))

    def _due(self, slug: str) -> bool:
        last = self._last.get(slug)
        if last is None:  # after a restart: the newest key this node holds (on a manager)
            made = [
                backup_transfer.unix(k.created)
                for k in backup_keys.all_keys(self.config)
                if k.facility == slug
            ]
            last = max((m for m in made if m is not None), default=None)
            if last is not None:
                self._last[slug] = last
        return last is None or self.clock() - last >= self.every

    def backup(self, slug: str, me: str, nodes: list[NodeInfo]) -> dict:
        """One scheduled backup: made here, its key on every manager, its files on another node."""
        target = store_node(slug, me, nodes)
        managers = [n for n in nodes if n.manager and n.state == "ready" and n.address]
        tls = node_tls_dir(self.config)
        backup_id, key = backup_keys.new_id(), backup_keys.new_key()
        started = self.clock()  # the interval runs from one backup's start to the next's
        made = backup_transfer.make(self.config, self.backend, slug, backup_id, key)
        try:
            record = backup_transfer.key_record(
                backup_id, slug, made["manifest"], key, self.clock()
            )
            fields = backup_transfer.key_fields(record)
            kept = []
            for manager in managers:
                try:
                    self.client(manager.address, tls).keep_key(fields)
                    kept.append(manager)
                except ProvisionerError as e:
                    event("backup_key_missed", slug=slug, node=manager.name, error=type(e).__name__)
            if not kept:
                raise ProvisionerError("no manager took the backup key")
            store = self.client(target.address, tls)
            try:
                for name in backup_transfer.FILES:
                    handle, size = backup_transfer.open_file(self.config, backup_id, name)
                    with handle:
                        store.upload(backup_id, name, handle, size)
            except (ProvisionerError, OSError):
                for manager in kept:  # a backup stored nowhere: its key opens nothing
                    _quietly(lambda m=manager: self.client(m.address, tls).destroy_key(backup_id))
                _quietly(lambda: store.drop_backup(backup_id))
                raise
        finally:
            backup_transfer.drop(self.config, backup_id)
        self._last[slug] = started
        self._prune(store, slug)
        size = sum(made["sizes"].values())
        event("scheduled_backup", slug=slug, backup_id=backup_id, node=target.name, bytes=size)
        return {"backup_id": backup_id, "node": target.name, "bytes": size}

    @staticmethod
    def _prune(store: NodeClient, slug: str) -> None:
        """Keep the facility's newest KEEP backups on the node that stores them."""
        try:
            rows = [r for r in store.held_backups() if r.get("facility") == slug]
        except ProvisionerError:
            return
        rows.sort(key=lambda r: str(r.get("created")), reverse=True)
        for row in rows[KEEP:]:
            _quietly(lambda r=row: store.drop_backup(str(r["backup_id"])))


def store_node(slug: str, me: str, nodes: list[NodeInfo]) -> NodeInfo:
    """The ready node other than this one that stores the facility's scheduled backups: the
    same one while the cluster's nodes stay the same (chosen by the slug)."""
    others = sorted(
        (n for n in nodes if n.name != me and n.state == "ready" and n.address),
        key=lambda n: n.name,
    )
    if not others:
        raise ProvisionerError("no other ready node to store the backup on")
    index = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:4], "big") % len(others)
    return others[index]


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except (ProvisionerError, OSError):
        pass

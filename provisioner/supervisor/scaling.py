"""A manager's node API scales a worker's facilities for it: the worker's supervisor cannot.

A worker's engine answers no Swarm call, so its supervisor asks a manager's node API (mutual
TLS) to list the facility services pinned to it, to read one of them with its tasks, and to
scale one to 0 or 1 replica. The manager serves only what is pinned to the node that asks:

- **Who asks** is the common name of the client certificate the TLS handshake verified (a
  certificate of the cluster's CA). `cluster init` and `join` label each node's Swarm entry
  with the common name of its own certificate (CERT_LABEL) while the node is a manager; the
  asker is the node whose label equals it. A certificate no node carries is refused.
- **What it may touch** is a facility service whose only placement constraint names that node
  (`node.labels.medcell.node==<node>`): any other is refused, pinned elsewhere or not.

So a node can sleep and wake its own facilities and nothing else, wherever its request comes
from (not its address: addresses change with NAT, several interfaces or a load balancer).

For its scheduled backups and its stale copies a worker also needs what only a manager knows:

- **The ready nodes** (name, node API address, whether a manager): where a backup's files may
  go and which managers keep its key. Nothing of any facility is in it.
- **A facility's cluster lock** (host/cluster_locks.py), taken, renewed and released for the
  asker, whose name the lock carries: only that node renews or releases it. The asker may lock
  a facility pinned to it (a backup of it), or one pinned to another node whose task runs
  there (a stale copy the asker destroys); the answer says which, as the managers see it once
  the lock is held, so the asker acts only on what holds while it holds the lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.errors import FacilityNotFound, InvalidArgument
from provisioner.host.swarm import CERT_LABEL, Swarm, SwarmConfigs, TaskInfo
from provisioner.host.validation import check_slug

MAX_SLUGS = 5_000  # slugs one lookup may ask about
TASKS_KEPT = 50  # of a service's task history (Swarm keeps 5 a slot); those meant to run first
LOCK_ID_RE = re.compile(r"^[a-z0-9]{1,64}$")  # a Swarm config's id


class Forbidden(Exception):
    """The asking node may not have this (not its facility, or a certificate of no node)."""


class LockLost(Exception):
    """The lock the asking node renews is no longer its own (expired and taken over)."""


class ManagerScaling:
    """What a manager answers a node about its own facility services."""

    def __init__(self, config, swarm: Callable[[], Swarm]):
        self.config = config
        self._swarm = swarm  # this node's engine, a manager (else its calls raise DockerError)

    def asker(self, peer: str) -> str:
        """The node whose certificate's common name is `peer`."""
        if not peer:
            raise Forbidden("the client certificate has no common name")
        for node in self._swarm().nodes():
            if node.labels.get(CERT_LABEL) == peer:
                return node.name
        raise Forbidden("the client certificate names no node of this cluster")

    def lookup(self, peer: str, body: object) -> dict:
        """`{"node", "pinned": {slug: replicas}, "placed": {slug: node or None}}`: every
        facility service pinned to the asker, and where each slug asked about is pinned."""
        if not isinstance(body, dict) or set(body) != {"slugs"}:
            raise InvalidArgument('a lookup takes {"slugs": [...]}')
        slugs = body["slugs"]
        if not isinstance(slugs, list) or len(slugs) > MAX_SLUGS:
            raise InvalidArgument(f"slugs is a list of at most {MAX_SLUGS}")
        if not all(isinstance(s, str) for s in slugs):
            raise InvalidArgument("slugs is a list of slugs")
        wanted = {check_slug(s) for s in slugs}
        node = self.asker(peer)
        swarm = self._swarm()
        pinned = {s.slug: s.replicas for s in swarm.facility_services(node) if s.node == node}
        placed: dict[str, str | None] = dict.fromkeys(pinned, node)
        for slug in sorted(wanted - set(pinned)):
            service = swarm.service(self.config.facility(slug).container)
            if service is not None:
                placed[slug] = service.node
        return {"node": node, "pinned": pinned, "placed": placed}

    def service(self, peer: str, slug: str) -> dict:
        """The asker's facility service: its replicas and its tasks."""
        node, name = self._own(peer, slug)
        swarm = self._swarm()
        state = swarm.service(name)
        if state is None:
            raise FacilityNotFound(f"no service of facility {slug}")
        tasks = sorted(swarm.tasks(name), key=lambda t: t.desired != "running")[:TASKS_KEPT]
        return {
            "slug": slug,
            "node": node,
            "replicas": state.replicas,
            "tasks": [_task(t) for t in tasks],
        }

    def scale(self, peer: str, slug: str, body: object) -> dict:
        if not isinstance(body, dict) or set(body) != {"replicas"}:
            raise InvalidArgument('scaling takes {"replicas": 0 or 1}')
        replicas = body["replicas"]
        if replicas not in (0, 1) or isinstance(replicas, bool):
            raise InvalidArgument("replicas is 0 (asleep) or 1 (awake)")
        _, name = self._own(peer, slug)
        self._swarm().scale(name, replicas)
        return {"slug": slug, "replicas": replicas}

    def nodes(self, peer: str) -> dict:
        """`{"node", "nodes": [{"name", "address", "manager"}]}`: the asker, and the ready nodes
        with a known address (where its backups' files and keys may go)."""
        node = self.asker(peer)
        ready = [
            {"name": n.name, "address": n.address, "manager": n.manager}
            for n in self._swarm().nodes()
            if n.state == "ready" and n.address
        ]
        return {"node": node, "nodes": ready}

    def take_lock(self, peer: str, slug: str, body: object) -> dict:
        """`{"slug", "lock", "node", "stale"}`: the facility's cluster lock, held for the asker
        until it renews it no more; where the facility is pinned, and whether the asker's copy
        of it is stale (pinned elsewhere, its task running there), once the lock is held."""
        if body != {}:
            raise InvalidArgument("taking a lock takes an empty object")
        node, _ = self._lockable(peer, slug)
        cluster_locks = self._locks()
        lock_id = cluster_locks.take(slug, node)
        try:
            _, where = self._lockable(peer, slug)
        except BaseException:
            cluster_locks.release(slug, node, lock_id)
            raise
        return {"slug": slug, "lock": lock_id, **where}

    def renew_lock(self, peer: str, slug: str, lock_id: str, body: object) -> dict:
        if body != {}:
            raise InvalidArgument("renewing a lock takes an empty object")
        node = self.asker(peer)
        if not self._locks().renew(slug, node, _check_lock_id(lock_id)):
            raise LockLost(f"the lock on facility {slug} is not held by node {node}")
        return {"slug": slug, "lock": lock_id}

    def release_lock(self, peer: str, slug: str, lock_id: str) -> dict:
        node = self.asker(peer)
        released = self._locks().release(slug, node, _check_lock_id(lock_id))
        return {"slug": slug, "released": released}

    def _locks(self) -> SwarmLocks:
        return SwarmLocks(self.config, SwarmConfigs(self._swarm().client))

    def _lockable(self, peer: str, slug: str) -> tuple[str, dict]:
        """The asker, and where the facility is: pinned to the asker, or pinned to another node
        and running there (a stale copy on the asker). Any other facility is refused."""
        node = self.asker(peer)
        service = self._swarm().service(self.config.facility(slug).container)
        if service is None:
            raise FacilityNotFound(f"no service of facility {slug}")
        task = service.task
        stale = (
            service.node not in (None, node)
            and service.running
            and task is not None
            and task.node == service.node
        )
        if service.node != node and not stale:
            raise Forbidden(f"facility {slug} is not pinned to node {node} nor running elsewhere")
        return node, {"node": service.node, "stale": stale}

    def _own(self, peer: str, slug: str) -> tuple[str, str]:
        """The asker and the service's name, if the service is pinned to the asker."""
        node = self.asker(peer)
        name = self.config.facility(slug).container
        service = self._swarm().service(name)
        if service is None:
            raise FacilityNotFound(f"no service of facility {slug}")
        if service.node != node:
            raise Forbidden(f"facility {slug} is not pinned to node {node}")
        return node, name


def _check_lock_id(lock_id: str) -> str:
    if not LOCK_ID_RE.fullmatch(lock_id):
        raise InvalidArgument("a lock's id is 1 to 64 lowercase letters and digits")
    return lock_id


def _task(task: TaskInfo) -> dict:
    return {
        "id": task.id,
        "node": task.node,
        "state": task.state,
        "desired": task.desired,
        "container_id": task.container_id,
        "error": task.error,
    }

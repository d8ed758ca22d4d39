"""Cluster mode for this node's supervisor: which facilities are its own, and how it scales them.

A cluster facility is a service pinned to one node (host/swarm.py); the supervisor of that node
keeps today's duties for it over the node's own socket: probes, sleep after its idle time (scale
0), wakes for requests and deadlines (scale 1), mail. Scaling needs a manager: a manager's own
engine; a worker asks a manager's node API (host/manager_swarm.py, served by scaling.py), which
scales only the services pinned to the node that asks. On a node cut off from every manager the
supervisor leaves awake facilities awake (they delete their own expired data), logs it, and
tries again; it never `docker stop`s or `start`s a task's container (Swarm would restart the
one, and cannot be handed the other).

Discovery runs off the scheduler's thread (a cut manager may take its client's timeout to
answer): `discover()` lists the services once and says whether a manager answered.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

import docker
import docker.errors

from medcell_common.interfaces import Label, RouteState
from provisioner.host import facility_data, locks, routes, state_file
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.config import Config
from provisioner.host.docker_backend import ContainerSpec, DockerBackend
from provisioner.host.engine import LocalEngine, SwarmEngine, Whereabouts
from provisioner.host.errors import Busy, DockerError, DockerUnavailable, ProvisionerError
from provisioner.host.manager_swarm import ManagerSwarm
from provisioner.host.remote_locks import RemoteLocks
from provisioner.host.swarm import Swarm, SwarmConfigs
from provisioner.host.validation import SLUG_RE
from provisioner.supervisor.logs import event
from provisioner.supervisor.node_api import in_cluster, node_tls_dir

SWARM_TIMEOUT = 15.0  # one manager call; a cut manager may otherwise hold a thread for a minute
# A facility with no service at all is only taken for deleted once its files here are this old:
# the node API prepares a facility's files moments before a manager creates its service.
GONE_GRACE = 600.0
# A discovery asks the manager for the services labelled with this node only; every this many
# it lists them all, so a service pinned here whose label was not updated is found all the same.
FULL_LISTING_EVERY = 10


class NoManager(DockerError):
    """Scaling needs a Swarm manager, and none answers this node (a worker, or cut off)."""


def no_manager(error: BaseException | None) -> bool:
    """Whether a job failed for want of a manager (lifecycle wraps the engine's error)."""
    return isinstance(error, NoManager) or isinstance(getattr(error, "__cause__", None), NoManager)


@dataclass(frozen=True)
class Discovery:
    """One look at the cluster from this node."""

    node: str
    # Whether a manager answered; without one nothing here may be scaled.
    reachable: bool
    reason: str = ""  # why not: worker, unreachable, inactive
    # slug -> replicas of the facility services pinned to this node (None: not known now)
    pinned: dict[str, int] | None = None
    # slug -> node of every facility service (None: not known now)
    placed: dict[str, str | None] | None = None


def detect(config: Config, backend: DockerBackend) -> bool:
    """Cluster mode: this host holds its cluster TLS files and its engine is a Swarm member."""
    if not in_cluster(config):
        return False
    try:
        return Swarm(backend.client).local_state()["state"] != "inactive"
    except DockerError:
        # The files come only from `cluster init` or `join`: a cluster node whose engine is
        # slow to answer now is still one.
        return True


class NodeSwarm(Swarm):
    """This node's engine for the calls a manager answers, each with a bounded wait; connected
    on first use, so a supervisor starting before its engine answers starts all the same."""

    @property
    def client(self):
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=SWARM_TIMEOUT)
            except docker.errors.DockerException as e:
                raise DockerUnavailable(f"connecting to Docker: no engine answers ({e})") from e
        return self._client


class NodeEngine:
    """The FacilityEngine of a cluster node's supervisor.

    Facilities pinned here are Swarm services (SwarmEngine: scale through this node's engine, a
    manager; on a worker through a manager's node API, `remote`). A single-host facility this
    host kept when it joined (a container named exactly `medcell-<slug>`, not a task) is still
    started and stopped as one. Without a manager (see `reachable`, set by each discovery)
    nothing is scaled (NoManager), and where a facility is comes from this node's own
    containers.
    """

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        swarm: Swarm,
        node: str = "",
        remote: ManagerSwarm | None = None,
    ):
        self.config, self.backend, self.node = config, backend, node
        self.local = LocalEngine(config, backend)
        self.swarm = SwarmEngine(config, swarm, local=backend)
        if remote is None:
            remote = ManagerSwarm(config.prefix, swarm.manager_addresses, node_tls_dir(config))
        # A worker's: the same calls, through a manager's node API.
        self.remote = SwarmEngine(config, remote, local=backend)
        self.reachable = False
        self.worker = False  # set by each discovery: scale through `remote`
        self._discoveries = 0

    def _scaler(self) -> SwarmEngine:
        return self.remote if self.worker else self.swarm

    def plain(self, slug: str) -> bool:
        """Whether the facility is a single-host container on this node (not a Swarm task)."""
        return self.backend.container(self.config.facility(slug).container) is not None

    def runs_here(self, slug: str) -> bool:
        """Whether a container of the facility runs on this node (a task or a plain one)."""
        return any(
            c.status == "running"
            for c in self.backend.containers(self.config.labels(facility=slug, role="facility"))
        )

    def locate(self, slug: str) -> Whereabouts | None:
        if self.plain(slug):
            return self.local.locate(slug)
        if self.reachable:
            try:
                return self._scaler().locate(slug)
            except DockerError:
                pass  # the manager went away meanwhile: what this node sees below
        if self.runs_here(slug):
            return Whereabouts(
                running=True,
                starting=False,
                node=self.node or None,
                container="",
                state="running",
            )
        raise NoManager(f"no manager answers; where facility {slug} is cannot be told")

    def run(self, spec: ContainerSpec, node: str | None = None) -> None:
        raise DockerError("a node's supervisor creates no facility")

    def wake(self, slug: str, timeout: float) -> None:
        if self.plain(slug):
            self.local.wake(slug, timeout)
        elif not self.reachable:
            raise NoManager(f"no manager answers; facility {slug} cannot be scaled")
        else:
            self._scaler().wake(slug, timeout)

    def sleep(self, slug: str, timeout: int) -> None:
        if self.plain(slug):
            self.local.sleep(slug, timeout)
        elif not self.reachable:
            raise NoManager(f"no manager answers; facility {slug} cannot be scaled")
        else:
            self._scaler().sleep(slug, timeout)

    def remove(self, slug: str) -> None:
        raise DockerError("a node's supervisor removes no facility")

    def gateway_running(self) -> bool:
        # The gateway here is a task: found by its labels, not by a container name.
        return self.swarm.gateway_running()

    def discover(self) -> Discovery:
        """The facility services, from this node's engine if it is a manager that answers."""
        try:
            state = self.swarm.swarm.local_state()
        except DockerError:
            return Discovery(self.node, reachable=False, reason="unreachable")
        if state["state"] == "inactive":
            return Discovery(self.node, reachable=False, reason="inactive")
        self.node = state["name"] or self.node  # the name its services are pinned by
        if not state["manager"]:
            return self._discover_as_worker()
        self.worker = False
        full = self._discoveries % FULL_LISTING_EVERY == 0
        try:
            services = self.swarm.swarm.facility_services(None if full else self.node)
            placed = {s.slug: s.node for s in services if SLUG_RE.fullmatch(s.slug)}
            if not full:
                # Where the facilities this node keeps files of but were not listed went.
                for slug in sorted(local_slugs(self.config) - set(placed)):
                    service = self.swarm.swarm.service(self.config.facility(slug).container)
                    if service is not None:
                        placed[slug] = service.node
        except DockerError:
            return Discovery(self.node, reachable=False, reason="unreachable")
        self._discoveries += 1
        pinned = {s.slug: s.replicas for s in services if s.slug in placed and s.node == self.node}
        destroy_stale_copies(self.config, self.backend, self.swarm.swarm, self.node, pinned)
        return Discovery(self.node, reachable=True, pinned=pinned, placed=placed)

    def _discover_as_worker(self) -> Discovery:
        """A worker asks a manager's node API for the services pinned to it, and where those it
        keeps files or volumes of are pinned now; it destroys its stale copies under each
        facility's cluster lock, which a manager holds for it."""
        try:
            held = volume_slugs(self.config, self.backend)
        except DockerError:
            held = set()  # this node's engine is slow now: its stale copies at the next look
        try:
            found = self.remote.swarm.lookup(sorted(local_slugs(self.config) | held))
        except ProvisionerError:
            self.worker = False
            return Discovery(self.node, reachable=False, reason="worker")
        self.worker = True
        self.node = found["node"]
        self._discoveries += 1
        pinned, placed = dict(found["pinned"]), dict(found["placed"])
        elsewhere = {
            slug: node
            for slug in sorted(held - set(pinned))
            if (node := placed.get(slug)) not in (None, self.node)
        }
        destroy_stale_copies_through(
            self.config, self.backend, RemoteLocks(self.remote.swarm), elsewhere
        )
        return Discovery(self.node, reachable=True, pinned=pinned, placed=placed)


def stale_copies(
    config: Config, backend: DockerBackend, swarm: Swarm, node: str, pinned: dict[str, int]
) -> dict[str, str]:
    """Facilities whose volumes are on this node but which now live on another one: slug ->
    that node. Confirmed from the managers for each: its service's constraint names another
    node and its task runs there (a node `node evacuate` gave up on, back with its old copy).
    Never a facility pinned here, nor one without a service (a single-host container's)."""
    found = {}
    for slug in sorted(volume_slugs(config, backend) - set(pinned)):
        service = swarm.service(config.facility(slug).container)
        if service is None or service.node in (None, node) or not service.running:
            continue
        if service.task is not None and service.task.node == service.node:
            found[slug] = service.node
    return found


def volume_slugs(config: Config, backend: DockerBackend) -> set[str]:
    """Facilities whose volumes are on this node."""
    labels = {Label.INSTANCE: config.prefix, Label.FACILITY: None}
    held = {v.labels.get(Label.FACILITY, "") for v in backend.volumes(labels)}
    return {slug for slug in held if SLUG_RE.fullmatch(slug)}


def destroy_stale_copies(
    config: Config, backend: DockerBackend, swarm: Swarm, node: str, pinned: dict[str, int]
) -> list[str]:
    """Destroy this node's (a manager's) copy of each facility that lives on another node now
    (stale_copies), as a move releases its old node: wipe, shredded keys, volumes, state file,
    socket folder, route; no line in deletions.log (the facility lives on). Each under the
    facility's cluster lock (so never while a move or an evacuation works on it) and this node's
    own lock, and only if the managers still say so once both are held. Returns the slugs
    destroyed."""
    try:
        candidates = stale_copies(config, backend, swarm, node, pinned)
    except DockerError:
        return []  # the manager went away meanwhile: next discovery
    cluster_locks = SwarmLocks(config, SwarmConfigs(swarm.client))

    @contextmanager
    def confirmed(slug: str) -> Iterator[bool]:
        with cluster_locks.hold(slug):
            yield slug in stale_copies(config, backend, swarm, node, {})

    return _destroy_each(config, backend, candidates, confirmed)


def destroy_stale_copies_through(
    config: Config, backend: DockerBackend, cluster_locks: RemoteLocks, candidates: dict[str, str]
) -> list[str]:
    """A worker's destroy_stale_copies: `candidates` (slug -> node) are the facilities with
    volumes here that a manager says are pinned elsewhere; each is destroyed only if the manager
    that takes its cluster lock for this node says, once it holds it, that it runs there."""
    if not candidates:
        return []

    @contextmanager
    def confirmed(slug: str) -> Iterator[bool]:
        with ExitStack() as stack:
            try:
                taken = stack.enter_context(cluster_locks.hold(slug))
            except DockerError as e:
                if getattr(e.__cause__, "code", "") != "forbidden":
                    raise
                # Not running on its node yet (a move under way, say): the next discovery.
                taken = {"stale": False}
            yield taken["stale"]

    return _destroy_each(config, backend, candidates, confirmed)


def _destroy_each(
    config: Config,
    backend: DockerBackend,
    candidates: dict[str, str],
    confirmed: Callable[[str], AbstractContextManager[bool]],
) -> list[str]:
    """Destroy each candidate held under `confirmed(slug)` (its cluster lock) and this node's
    own lock, if still stale then."""
    destroyed = []
    for slug, elsewhere in candidates.items():
        try:
            with confirmed(slug) as stale, locks.facility_lock(config, slug):
                if not stale:
                    continue
                result = facility_data.destroy(config, backend, slug, lambda _: None, log=False)
        except Busy:
            continue  # a command works on it: next discovery
        except ProvisionerError as e:
            event("stale_copy_failed", logging.WARNING, slug=slug, error=type(e).__name__)
            continue
        event(
            "stale_copy_destroyed",
            logging.WARNING,
            slug=slug,
            node=elsewhere,
            shredded=result["shredded"],
        )
        destroyed.append(slug)
    return destroyed


def local_slugs(config: Config) -> set[str]:
    """Facilities that left files on this node: a state file, a socket folder, a local route."""
    found = set(state_file.load_all(config))
    try:
        found |= {p.name for p in (config.run_dir / "facilities").iterdir() if p.is_dir()}
    except FileNotFoundError:
        pass
    table = (routes.read_routes(config) or {}).get("facilities")
    if isinstance(table, dict):
        found |= {
            slug
            for slug, entry in table.items()
            if isinstance(entry, dict) and entry.get("state") != RouteState.REMOTE
        }
    return {slug for slug in found if isinstance(slug, str) and SLUG_RE.fullmatch(slug)}


def remove_unassigned(
    config: Config,
    found: Discovery,
    plain: set[str],
    moved: set[str],
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Remove what this node keeps of facilities no longer assigned to it; returns their slugs.

    Only what routes requests here and what the scheduler would act on: the route entry, the
    state file, the socket folder. Never a volume (a facility pinned elsewhere is destroyed here
    by the manager that moved it), never a facility pinned here or a single-host container's.
    `moved`: facilities this supervisor knew as pinned here, now pinned elsewhere or gone.
    Any other counts only once its files here are GONE_GRACE old: a facility is prepared on
    its node (a new one, or one moving here) moments before its service is pinned there.
    """
    assert found.pinned is not None and found.placed is not None
    removed = []
    for slug in sorted(local_slugs(config)):
        if slug in found.pinned or slug in plain:
            continue
        elsewhere = slug in found.placed
        if slug not in moved and _newest_change(config, slug) > clock() - GONE_GRACE:
            continue
        try:
            with locks.facility_lock(config, slug):
                routes.set_route(config, slug, None)
                state_file.remove(config, slug)
                socket_dir = config.facility(slug).socket_dir
                shutil.rmtree(socket_dir, ignore_errors=True)
        except Busy:
            continue  # a command holds it (the node API destroying it, say): next time
        event(
            "unassigned_removed",
            logging.WARNING,
            slug=slug,
            reason="pinned_elsewhere" if elsewhere else "no_service",
            socket_dir="kept" if socket_dir.exists() else "removed",
        )
        removed.append(slug)
    return removed


def _newest_change(config: Config, slug: str) -> float:
    newest = 0.0
    for path in (state_file.state_path(config, slug), config.facility(slug).socket_dir):
        try:
            newest = max(newest, os.stat(path).st_mtime)
        except OSError:
            pass
    return newest


def publish_missing_routes(config: Config, pinned: dict[str, int]) -> None:
    """A facility pinned and prepared here (its state file) that this node's routes do not list
    yet gets a route: to the activator (its first request wakes it, or finds it running and
    routes it straight)."""
    table = (routes.read_routes(config) or {}).get("facilities")
    table = table if isinstance(table, dict) else {}
    for slug in sorted(pinned):
        entry = table.get(slug)
        if isinstance(entry, dict) and entry.get("state") in routes.LOCAL_STATES:
            continue
        try:
            with locks.facility_lock(config, slug):
                if not state_file.state_path(config, slug).exists():
                    continue  # not prepared here, or destroyed here meanwhile
                state = routes.route_state(False, state_file.load(config, slug))
                routes.set_route(config, slug, state)
        except Busy:
            continue
        event("route_added", slug=slug, state=state)

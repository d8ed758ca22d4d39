"""Facilities in cluster mode: each a Swarm service pinned to one node, its data made, commanded
and destroyed there through that node's API (no exec goes through Swarm).

The CLI runs on a manager. Its engine is the Swarm's; every node keeps MEDCELL_HOME at the same
path, so a facility's spec (its socket directory under MEDCELL_HOME) names the right host paths
on whichever node it is pinned to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from medcell_common.times import iso_utc
from provisioner.host import cluster_ca, placement, smtp, specs
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.config import Config, idle_text
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import SwarmEngine
from provisioner.host.errors import (
    DockerError,
    FacilityCommandFailed,
    FacilityExists,
    FacilityNotFound,
    InvalidArgument,
    ProvisionerError,
)
from provisioner.host.node_api import NodeClient
from provisioner.host.swarm import (
    ELECTION_SECONDS,
    FacilityService,
    NodeInfo,
    Swarm,
    SwarmConfigs,
    TaskInfo,
)

# A routes push waits this long for each node (all at once): a cut node must not hold a create.
PUSH_TIMEOUT = 10.0
PUSH_WORKERS = 8
ANSWER_POLL_SECONDS = 0.5

NodeClientFactory = Callable[[str, Path], NodeClient]


def cluster_mode(config: Config, backend: DockerBackend) -> bool:
    """This host is a manager of a cluster it joined (decided without the engine when it never
    joined one); a worker is told to use a manager."""
    if not (cluster_ca.cluster_dir(config.home) / "node.crt").exists():
        return False
    state = Swarm(backend.client).local_state()
    if state["state"] != "active":
        return False
    if not state["manager"]:
        raise InvalidArgument(
            "this host is a worker of the cluster; run medcell on a manager "
            "(`medcell node list` there names them)"
        )
    return True


@dataclass(frozen=True)
class Placed:
    """One facility service as the cluster runs it: its pin and its task meant to run."""

    service: FacilityService
    task: TaskInfo | None

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.state == "running"


class ClusterFacilities:
    """Create, find and delete facilities as pinned services over a Swarm manager."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        progress: Callable[[str], None],
        node_client: NodeClientFactory = NodeClient,
    ):
        self.config = config
        self.backend = backend
        self.progress = progress
        self.node_client = node_client
        self._active: bool | None = None

    def active(self) -> bool:
        """Cluster mode? Asked once per command."""
        if self._active is None:
            self._active = cluster_mode(self.config, self.backend)
        return self._active

    @property
    def swarm(self) -> Swarm:
        return Swarm(self.backend.client, election_seconds=ELECTION_SECONDS)

    @property
    def locks(self) -> SwarmLocks:
        """The facilities' locks, held in the Swarm: two commands on one facility, on any
        managers, run one after the other."""
        configs = SwarmConfigs(self.backend.client, election_seconds=ELECTION_SECONDS)
        return SwarmLocks(self.config, configs)

    def client(self, node: NodeInfo, timeout: float | None = None) -> NodeClient:
        tls = cluster_ca.cluster_dir(self.config.home)
        if timeout is None:
            return self.node_client(node.address, tls)
        return self.node_client(node.address, tls, timeout=timeout)

    # reading

    def placed(self) -> dict[str, Placed]:
        """Every facility service by slug, with its task (two engine calls for all of them)."""
        swarm = self.swarm
        services = swarm.facility_services()
        tasks = swarm.facility_tasks() if services else {}
        return {
            s.slug: Placed(s, tasks.get(s.slug)) for s in sorted(services, key=lambda s: s.slug)
        }

    def node_of(self, slug: str) -> tuple[NodeInfo, Placed]:
        """The node a facility is pinned to; FacilityNotFound without its service."""
        placed = self.placed().get(slug)
        if placed is None:
            raise FacilityNotFound(f"no facility {slug}")
        node = self._node(self.swarm.nodes(), placed.service.node, slug)
        return node, placed

    @staticmethod
    def _node(nodes: list[NodeInfo], name: str | None, slug: str) -> NodeInfo:
        found = next((n for n in nodes if n.name == name), None)
        if found is None:
            raise InvalidArgument(f"facility {slug} is pinned to {name}, not a node of the cluster")
        return found

    # changing

    def create(
        self,
        slug: str,
        name: str,
        retention: str,
        admin: str,
        idle_seconds: int | None,
        quota_args: list[str],
        node: str | None,
    ) -> dict:
        """Place the facility, make its data on its node, run its service there, make its
        first admin, then hand every node the new routes map. A failure undoes every step."""
        swarm = self.swarm
        facility = self.config.facility(slug)
        nodes, services = swarm.nodes(), swarm.facility_services()
        if any(s.slug == slug for s in services) or swarm.service(facility.container):
            raise FacilityExists(f"facility {slug} already exists")
        if node is not None:
            target = placement.check_node(nodes, node)
        else:
            target = placement.choose_node(nodes, services)
        image_id = self.backend.image_id(self.config.facility_image)
        if image_id is None:
            raise DockerError(f"image {self.config.facility_image} is missing; run `medcell up`")
        client = self.client(self._node(nodes, target, slug))
        meta = {"name": name, "retention": retention, "created": iso_utc()}
        if idle_seconds is not None:
            meta["idle"] = idle_text(idle_seconds)
        engine = SwarmEngine(self.config, swarm)
        undo: list[Callable[[], object]] = []
        try:
            # Registered first: a prepare that failed half-way may have made something there.
            undo.append(lambda: client.destroy(slug))
            client.prepare(slug, meta)
            spec = specs.facility_spec(
                self.config, facility, name, retention, image_id, smtp.configured(self.config.home)
            )
            try:
                engine.run(spec, node=target)
            except DockerError as e:
                # Another create of the same slug got its service in first (one that did not
                # wait for the lock): what it made on its node is not ours to destroy.
                other = swarm.service(facility.container)
                if other is None:
                    raise
                if other.node == target:
                    undo.clear()
                raise FacilityExists(f"facility {slug} already exists (made meanwhile)") from e
            undo.append(lambda: engine.remove(slug))
            self.progress(f"facility {slug} placed on {target}; waiting for it to run")
            swarm.wait_running(facility.container, self.config.health_timeout)
            self._wait_answers(client, slug)
            login = client.manage(slug, "create-admin", "--username", admin)
            if quota_args:
                client.manage(slug, "set-quota", *quota_args)
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except (ProvisionerError, OSError):
                    pass  # keep the original error; what is left shows in `facility list`
            raise
        self.push_routes()
        return {
            "slug": slug,
            "url": facility.url,
            "admin_user": login.get("username"),
            "admin_password": login.get("password"),
            "node": target,
        }

    def change(self, slug: str, action: str) -> dict:
        """The operator's sleep, wake, stop or start, done by the facility's node (its state
        file, its route, the scaling through its engine). A stopped facility's service carries
        the mark that lists it as stopped: set once its node stopped it, removed before it
        starts."""
        node, placed = self.node_of(slug)
        name = self.config.facility(slug).container
        if action == "start" and placed.service.stopped:
            self.swarm.mark_stopped(name, False)
        status = self.client(node).lifecycle(slug, action)
        if action == "stop" and not placed.service.stopped:
            self.swarm.mark_stopped(name, True)
        return {"slug": slug, "status": status, "node": node.name}

    def manage(self, slug: str, *command: str, wake: str | None = None) -> dict:
        """A management command in the facility on its node; `wake`: it changes the facility,
        so an asleep one is woken first (saying why), and a stopped one is refused."""
        node, placed = self.node_of(slug)
        client = self.client(node)
        if wake is not None and not placed.running:
            if placed.service.stopped:
                raise FacilityCommandFailed(f"facility {slug} is stopped; start it first")
            self.progress(f"waking {slug} to {wake}")
            client.lifecycle(slug, "wake")
        return client.manage(slug, *command)

    def _wait_answers(self, client: NodeClient, slug: str) -> None:
        """Until a management command runs in the facility's container on its node."""
        deadline = time.monotonic() + self.config.health_timeout
        while True:
            try:
                client.manage(slug, "usage")
                return
            except FacilityCommandFailed:
                if time.monotonic() > deadline:
                    raise
            time.sleep(ANSWER_POLL_SECONDS)

    def delete(self, slug: str) -> dict:
        """Remove the service (its task gone first, so nothing holds the volumes), destroy the
        data on its node (wipe receipt, shredded keys, volumes, socket directory), and hand
        every node the map without it. Without a service, every ready node is asked whether it
        holds something of the facility (a delete or create cut short)."""
        swarm = self.swarm
        placed = self.placed().get(slug)
        nodes = swarm.nodes()
        if placed is not None:
            holders = [self._node(nodes, placed.service.node, slug)]
            SwarmEngine(self.config, swarm).remove(slug)
        else:
            holders = [n for n in nodes if n.state == "ready" and self._holds(n, slug)]
            if not holders:
                raise FacilityNotFound(f"no facility {slug}")
        result = {"node": holders[0].name, "keys_destroyed": 0}
        result.update(receipt=None, receipt_key=None)
        for node in holders:
            try:
                destroyed = self.client(node).destroy(slug)
            except FacilityNotFound:
                continue  # nothing of it left there
            result["keys_destroyed"] += int(destroyed.get("shredded") or 0)
            if destroyed.get("receipt"):
                result["receipt"] = destroyed.get("receipt")
                result["receipt_key"] = destroyed.get("receipt_key")
        self.forget_backups(slug)
        self.push_routes()
        return result

    def forget_tombstones(self, slug: str) -> list[str]:
        """Every ready manager forgets a deleted facility's tombstones (they guarded only its
        backups, whose keys are destroyed); returns the managers that could not be told (their
        copies expire with the longest a backup can live)."""
        missed = []
        for node in self.swarm.nodes():
            if not (node.manager and node.state == "ready" and node.address):
                continue
            try:
                self.client(node, PUSH_TIMEOUT).forget_tombstones(slug)
            except ProvisionerError as e:
                self.progress(f"node {node.name} did not forget the tombstones of {slug} ({e})")
                missed.append(node.name)
        return missed

    def forget_backups(self, slug: str) -> None:
        """A deleted facility's backup keys (kept on every manager) and its backups held on any
        node are destroyed everywhere; a node that cannot be reached is named."""
        for node in self.swarm.nodes():
            if node.state != "ready" or not node.address:
                continue
            try:
                self.client(node).forget(slug)
            except ProvisionerError as e:
                self.progress(
                    f"node {node.name} may keep backups of {slug} until they expire ({e})"
                )

    def _holds(self, node: NodeInfo, slug: str) -> bool:
        try:
            return slug in self.client(node).info()["facilities"]
        except ProvisionerError as e:
            self.progress(f"node {node.name} could not say whether it holds {slug} ({e})")
            return False

    def push_routes(self) -> dict:
        """Hand every ready node the cluster's map {slug: {node, address}}, all at once.

        The generation is the wall clock in microseconds (a JSON-safe integer, below 2**53 for
        two centuries to come): it grows across managers as long as their clocks agree to
        better than the time between two pushes (a Swarm needs its managers' clocks in step for
        its own certificates anyway), and a node keeps the newest map it was given. A node
        that cannot be reached is reported, not fatal: every push carries the whole map, so it
        gets this one's facilities with the next.
        """
        swarm = self.swarm
        nodes, services = swarm.nodes(), swarm.facility_services()
        address = {n.name: n.address for n in nodes if n.address}
        facilities = {
            s.slug: {"node": s.node, "address": address[s.node]}
            for s in services
            if s.slug and s.node in address
        }
        generation = time.time_ns() // 1000
        ready = [n for n in nodes if n.state == "ready" and n.address]

        def push(node: NodeInfo) -> str | None:
            try:
                answer = self.client(node, PUSH_TIMEOUT).push_routes(generation, facilities)
            except ProvisionerError as e:
                return str(e)
            if answer.get("served") is False:
                self.progress(f"the gateway on node {node.name} has not applied the routes map yet")
            return None

        missed = {n.name: n.state for n in nodes if n not in ready}
        if ready:
            with ThreadPoolExecutor(max_workers=min(PUSH_WORKERS, len(ready))) as pool:
                for node, error in zip(ready, pool.map(push, ready), strict=True):
                    if error is not None:
                        missed[node.name] = error
        for name, why in sorted(missed.items()):
            self.progress(f"node {name} did not take the routes map ({why}); the next push has it")
        return {"generation": generation, "facilities": len(facilities), "missed": missed}

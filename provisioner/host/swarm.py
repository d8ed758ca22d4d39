"""The Docker Swarm calls of cluster mode: plain data and our own errors come out of it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import docker
import docker.errors

from provisioner.host.docker_backend import engine_errors
from provisioner.host.errors import Conflict, DockerError, NotFound

SWARM_PORT = 2377
# Every node carries its own name in this label; a facility service is pinned to one node by a
# constraint on it (`node.labels.medcell.node==<node>`), so a facility never starts elsewhere.
NODE_LABEL = "medcell.node"
# Every node also carries the common name of its cluster certificate (set by `cluster init` and
# `join`, while the node is a manager): a manager's node API knows by it which node asks.
CERT_LABEL = "medcell.cert"
FACILITY_LABEL = "medcell.facility"
# On a facility service the operator stopped (`facility stop`): nothing wakes it but `start`.
STOPPED_LABEL = "medcell.stopped"
# Swarm's task states in which a task has (or is about to have) a container.
ACTIVE_TASK_STATES = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting",
     "running"}
)  # fmt: skip
FAILED_TASK_STATES = frozenset({"failed", "rejected"})
ERROR_CHARS = 300  # what we keep of a task's error text
POLL_SECONDS = 0.1
# Right after a node returns the managers may elect a leader for a few seconds, and every call
# that needs one fails meanwhile with this: an operator's command asks again for a while.
LEADERLESS = "does not have a leader"
ELECTION_SECONDS = 15.0
ELECTION_PAUSE = 0.5
# What the throwaway probe container prints: its no_new_privs flag and its network devices.
_PROBE = "grep '^NoNewPrivs:' /proc/self/status; ls /sys/class/net"

log = logging.getLogger("medcell.swarm")
T = TypeVar("T")


def through_election(action: str, call: Callable[[], T], seconds: float) -> T:
    """`call` (the engine calls of `action`) with docker-py's errors translated; while the
    managers have no leader, asked again until `seconds` have passed (0: asked once)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine_errors(action):
                return call()
        except DockerError as e:
            if LEADERLESS not in str(e) or time.monotonic() + ELECTION_PAUSE > deadline:
                raise
            log.info("%s: the managers are electing a leader; asking again", action)
        time.sleep(ELECTION_PAUSE)


@dataclass(frozen=True)
class EngineHardening:
    """What a container started with no network and no options gets on this engine."""

    no_new_privileges: bool
    network_devices: tuple[str, ...]

    @property
    def bridge_none(self) -> bool:
        return set(self.network_devices) <= {"lo"}


@dataclass(frozen=True)
class NodeInfo:
    id: str
    name: str
    address: str
    state: str  # Swarm's: ready, down, unknown, disconnected
    availability: str  # Swarm's: active, pause, drain
    manager: bool
    memory: int  # bytes
    labels: dict[str, str]


@dataclass(frozen=True)
class FacilityService:
    slug: str
    node: str | None  # the node its constraint pins it to
    replicas: int
    # What its container is told (display name, retention) and when the service was made.
    name: str = ""
    retention: str = ""
    created: str = ""
    stopped: bool = False  # the operator's `facility stop` (its STOPPED_LABEL)


@dataclass(frozen=True)
class TaskInfo:
    """One task of a service, as Swarm reports it."""

    id: str
    node: str  # the node's name ("" while unassigned)
    state: str  # Swarm's: new, pending, … running, complete, failed, rejected, shutdown
    desired: str  # running, shutdown or remove
    container_id: str
    error: str


@dataclass(frozen=True)
class ServiceState:
    """A facility service: what it is pinned to, how many replicas it should run, its task."""

    name: str
    slug: str
    node: str | None
    replicas: int
    task: TaskInfo | None  # the task meant to run (none at 0 replicas)

    @property
    def running(self) -> bool:
        task = self.task
        return task is not None and task.state == "running" and task.desired == "running"


def pin_constraint(node: str) -> str:
    """The placement constraint that keeps a service on one node."""
    return f"node.labels.{NODE_LABEL}=={node}"


class Swarm:
    """This host's Docker Engine, seen as a Swarm member."""

    poll_seconds = POLL_SECONDS  # between two looks while waiting for a task

    def __init__(self, client=None, election_seconds: float = 0.0):
        self._client = client
        # How long a call that needs the managers' leader waits out an election (0: not at all).
        self.election_seconds = election_seconds

    def _managed(self, action: str, call: Callable[[], T]) -> T:
        return through_election(action, call, self.election_seconds)

    @property
    def client(self):
        if self._client is None:
            with engine_errors("connecting to Docker"):
                self._client = docker.from_env()
        return self._client

    def local_state(self) -> dict:
        """`{"state", "manager", "node_id", "name"}` of this engine (state: inactive, active, …)."""
        with engine_errors("reading the engine's Swarm state"):
            info = self.client.info()
        swarm = info.get("Swarm") or {}
        return {
            "state": swarm.get("LocalNodeState") or "inactive",
            "manager": bool(swarm.get("ControlAvailable")),
            "node_id": swarm.get("NodeID") or "",
            "name": info.get("Name") or "",
        }

    def manager_addresses(self) -> tuple[str, list[str]]:
        """This node's address and every manager's, as this engine knows them (a worker too)."""
        with engine_errors("reading the cluster's managers"):
            info = self.client.info()
        swarm = info.get("Swarm") or {}
        own = str(swarm.get("NodeAddr") or "")
        found = {
            str(m.get("Addr") or "").rpartition(":")[0] for m in swarm.get("RemoteManagers") or []
        }
        return own, sorted(found - {""})

    def has_image(self, image: str) -> bool:
        with engine_errors(f"looking for image {image}"):
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                return False
        return True

    def hardening(self, image: str) -> EngineHardening:
        """Start a throwaway container the way a Swarm task gets one and look at what it has.

        Neither setting shows in `docker info` or `docker inspect`: only a running process does.
        """
        with engine_errors("checking the engine's settings with a throwaway container"):
            output = self.client.containers.run(
                image,
                entrypoint=["/bin/sh", "-c", _PROBE],
                user="65534:65534",
                cap_drop=["ALL"],
                read_only=True,
                mem_limit="64m",
                pids_limit=16,
                remove=True,
                labels={"medcell.role": "probe"},
            )
        lines = output.decode("utf-8", "replace").split()
        flag = lines[1] if len(lines) > 1 and lines[0] == "NoNewPrivs:" else "0"
        devices = tuple(sorted(lines[2:] if lines[:1] == ["NoNewPrivs:"] else lines))
        return EngineHardening(no_new_privileges=flag == "1", network_devices=devices)

    def init(self, advertise_addr: str | None) -> str:
        """Make this engine the first manager of a new Swarm; returns its node id."""
        with engine_errors("creating the cluster"):
            self.client.swarm.init(
                advertise_addr=advertise_addr, listen_addr=f"0.0.0.0:{SWARM_PORT}"
            )
        return self.local_state()["node_id"]

    def join(self, manager: str, token: str, advertise_addr: str | None) -> str:
        """Join this engine to the Swarm that `manager` (HOST:PORT) belongs to."""
        with engine_errors(f"joining the cluster through {manager}"):
            self.client.swarm.join(
                remote_addrs=[manager],
                join_token=token,
                advertise_addr=advertise_addr,
                listen_addr=f"0.0.0.0:{SWARM_PORT}",
            )
        return self.local_state()["node_id"]

    def manager_join(self) -> tuple[str, str]:
        """The manager join token and this manager's HOST:PORT."""
        with engine_errors("reading the cluster's join token"):
            self.client.swarm.reload()
            token = self.client.swarm.attrs["JoinTokens"]["Manager"]
            node = self.client.nodes.get(self.local_state()["node_id"])
        address = (node.attrs.get("ManagerStatus") or {}).get("Addr") or ""
        return token, address

    def label_node(self, node_id: str, name: str, cert: str = "") -> None:
        """Give a node its `medcell.node` label (what facility constraints match) and, with
        `cert`, the common name of its cluster certificate (CERT_LABEL)."""

        def label() -> None:
            node = self.client.nodes.get(node_id)
            spec = dict(node.attrs["Spec"])
            labels = {**(spec.get("Labels") or {}), NODE_LABEL: name}
            if cert:
                labels[CERT_LABEL] = cert
            spec["Labels"] = labels
            node.update(spec)

        self._managed(f"labelling node {name}", label)

    def nodes(self) -> list[NodeInfo]:
        nodes = self._managed("listing the cluster's nodes", self.client.nodes.list)
        return sorted((_node_info(n.attrs) for n in nodes), key=lambda n: n.name)

    def facility_services(self, node: str | None = None) -> list[FacilityService]:
        """Every facility service, or (`node`) those labelled as pinned to that node: the
        manager filters them, so a node's supervisor is not sent all of a large cluster's."""
        labels = FACILITY_LABEL if node is None else [FACILITY_LABEL, f"{NODE_LABEL}={node}"]
        services = self._managed(
            "listing facility services",
            lambda: self.client.services.list(filters={"label": labels}),
        )
        return [_facility_service(s.attrs) for s in services]

    def facility_tasks(self) -> dict[str, TaskInfo]:
        """Each facility service's task meant to run, by slug, in two calls for all of them (a
        service at 0 replicas has none)."""
        services, tasks = self._managed(
            "listing facility services and their tasks",
            lambda: (
                self.client.services.list(filters={"label": FACILITY_LABEL}),
                self.client.api.tasks(filters={"desired-state": "running"}),
            ),
        )
        slugs = {s.attrs.get("ID"): _facility_service(s.attrs).slug for s in services}
        names = self._node_names() if tasks else {}
        by_slug: dict[str, list[TaskInfo]] = {}
        for attrs in tasks:
            slug = slugs.get(attrs.get("ServiceID"))
            if slug:
                by_slug.setdefault(slug, []).append(_task_info(attrs, names))
        return {slug: task for slug, found in by_slug.items() if (task := _current_task(found))}

    # facility services

    def create_service(self, rendered: dict) -> str:
        """Create a service from its rendered spec (service_spec.py); returns its id."""
        created = self._managed(
            f"creating service {rendered['Name']}",
            lambda: self.client.api.create_service(
                rendered["TaskTemplate"],
                name=rendered["Name"],
                labels=rendered["Labels"],
                mode=rendered["Mode"],
                update_config=rendered["UpdateConfig"],
            ),
        )
        return created["ID"]

    def service(self, name: str) -> ServiceState | None:
        """A facility service's state, or None if there is no such service."""
        try:
            attrs, tasks = self._managed(
                f"inspecting service {name}",
                lambda: (
                    self.client.api.inspect_service(name),
                    self.client.api.tasks(filters={"service": name}),
                ),
            )
        except NotFound:
            return None
        pinned = _facility_service(attrs)
        names = self._node_names() if tasks else {}
        task = _current_task([_task_info(t, names) for t in tasks])
        return ServiceState(
            name=name, slug=pinned.slug, node=pinned.node, replicas=pinned.replicas, task=task
        )

    def scale(self, name: str, replicas: int) -> None:
        """Set the service's replicas (1 awake, 0 asleep); the rest of its spec is kept."""

        def scale() -> None:
            attrs = self.client.api.inspect_service(name)
            spec = attrs["Spec"]
            self.client.api.update_service(
                attrs["ID"],
                attrs["Version"]["Index"],
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=spec.get("Labels"),
                mode={"Replicated": {"Replicas": replicas}},
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"),
            )

        self._managed(f"scaling service {name} to {replicas}", scale)

    def mark_stopped(self, name: str, stopped: bool) -> None:
        """Label the service as the operator's stopped one (or not); its tasks are untouched."""

        def mark() -> None:
            attrs = self.client.api.inspect_service(name)
            spec = attrs["Spec"]
            labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k != STOPPED_LABEL}
            if stopped:
                labels[STOPPED_LABEL] = "true"
            self.client.api.update_service(
                attrs["ID"],
                attrs["Version"]["Index"],
                task_template=spec["TaskTemplate"],
                name=spec["Name"],
                labels=labels,
                mode=spec.get("Mode"),
                update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"),
            )

        self._managed(f"marking service {name} {'stopped' if stopped else 'started'}", mark)

    def remove_service(self, name: str) -> None:
        """Remove a service (Swarm stops its task); a missing one is fine. Volumes stay."""
        try:
            self._managed(f"removing service {name}", lambda: self.client.api.remove_service(name))
        except NotFound:
            pass

    def wait_running(
        self, name: str, timeout: float, ignore: frozenset[str] = frozenset()
    ) -> TaskInfo:
        """Wait until the service's task runs; a task that fails or is rejected raises its error.

        `ignore`: tasks that had failed before (their errors are not this start's).
        """
        deadline = time.monotonic() + timeout
        while True:
            tasks = self._tasks(name)
            task = _current_task(tasks)
            if task is not None and task.state == "running":
                return dataclasses.replace(task, node=self._node_names().get(task.node, task.node))
            failed = [t for t in tasks if t.state in FAILED_TASK_STATES and t.id not in ignore]
            if failed:
                raise DockerError(f"the task of {name} {failed[0].state}: {failed[0].error}")
            if time.monotonic() > deadline:
                raise DockerError(
                    f"the task of {name} is not running after {timeout:.0f} s ({_describe(task)})"
                )
            time.sleep(self.poll_seconds)

    def wait_stopped(self, name: str, timeout: float) -> None:
        """Wait until no task of the service has a container running or about to run."""
        deadline = time.monotonic() + timeout
        while any(t.state in ACTIVE_TASK_STATES for t in self._tasks(name)):
            if time.monotonic() > deadline:
                raise DockerError(f"the task of {name} still runs after {timeout:.0f} s")
            time.sleep(self.poll_seconds)

    def tasks(self, name: str) -> list[TaskInfo]:
        """The service's tasks, each with its node's name."""
        tasks = self._tasks(name)
        names = self._node_names() if tasks else {}
        return [dataclasses.replace(t, node=names.get(t.node, t.node)) for t in tasks]

    def failed_tasks(self, name: str) -> frozenset[str]:
        return frozenset(t.id for t in self._tasks(name) if t.state in FAILED_TASK_STATES)

    def _tasks(self, name: str) -> list[TaskInfo]:
        try:
            tasks = self._managed(
                f"listing the tasks of {name}",
                lambda: self.client.api.tasks(filters={"service": name}),
            )
        except NotFound:
            return []
        return [_task_info(t, {}) for t in tasks]

    def _node_names(self) -> dict[str, str]:
        return {n.id: n.name for n in self.nodes()}


def _task_info(attrs: dict, node_names: dict[str, str]) -> TaskInfo:
    status = attrs.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    node_id = attrs.get("NodeID") or ""
    error = " ".join(str(status.get("Err") or "").split())
    return TaskInfo(
        id=attrs.get("ID", ""),
        node=node_names.get(node_id, node_id),
        state=status.get("State") or "unknown",
        desired=attrs.get("DesiredState") or "",
        container_id=container.get("ContainerID") or "",
        error=error[:ERROR_CHARS],
    )


def _describe(task: TaskInfo | None) -> str:
    if task is None:
        return "no task"
    return f"{task.state}: {task.error}" if task.error else task.state


def _current_task(tasks: list[TaskInfo]) -> TaskInfo | None:
    """The task meant to run (desired state running), else None: a service at 0 replicas has
    only tasks on their way out."""
    meant = [t for t in tasks if t.desired == "running"]
    if not meant:
        return None
    # While Swarm replaces a task, the new one comes first only once the old one is gone.
    meant.sort(key=lambda t: (t.state == "running", t.state in ACTIVE_TASK_STATES), reverse=True)
    return meant[0]


def _node_info(attrs: dict) -> NodeInfo:
    description = attrs.get("Description") or {}
    spec = attrs.get("Spec") or {}
    status = attrs.get("Status") or {}
    labels = spec.get("Labels") or {}
    return NodeInfo(
        id=attrs.get("ID", ""),
        name=labels.get(NODE_LABEL) or description.get("Hostname", ""),
        address=status.get("Addr", ""),
        state=status.get("State", "unknown"),
        availability=spec.get("Availability", "active"),
        manager=spec.get("Role") == "manager",
        memory=int((description.get("Resources") or {}).get("MemoryBytes") or 0),
        labels=labels,
    )


def _facility_service(attrs: dict) -> FacilityService:
    spec = attrs.get("Spec") or {}
    constraints = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("Constraints")
    prefix = f"node.labels.{NODE_LABEL}=="
    pinned = [c.split("==", 1)[1].strip() for c in constraints or [] if c.startswith(prefix)]
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    env = dict(e.split("=", 1) for e in container.get("Env") or [] if "=" in e)
    return FacilityService(
        slug=(spec.get("Labels") or {}).get(FACILITY_LABEL, ""),
        node=pinned[0] if pinned else None,
        replicas=int(replicas),
        name=env.get("MEDCELL_FACILITY_NAME", ""),
        retention=env.get("MEDCELL_RETENTION", ""),
        created=str(attrs.get("CreatedAt") or ""),
        stopped=(spec.get("Labels") or {}).get(STOPPED_LABEL) == "true",
    )


@dataclass(frozen=True)
class LockConfig:
    """A Swarm config object that stands for a lock (host/cluster_locks.py): its id, its
    version (for a label update), and its labels (holder, expiry)."""

    id: str
    version: int
    labels: dict[str, str]


class SwarmConfigs:
    """The Swarm config objects that medcell's cluster-wide locks are made of.

    A config's name is unique in the Swarm and its creation goes through the managers' Raft
    log, so two managers creating one name at once get exactly one success. Only its labels can
    change afterwards. Nothing secret is ever put in one: every manager keeps it.
    """

    def __init__(self, client, election_seconds: float = 0.0):
        self.client = client
        # As Swarm's: how long a call waits out the managers' election of a leader. Removal is
        # asked once: the locks try it again themselves (cluster_locks.py).
        self.election_seconds = election_seconds

    def create(self, name: str, labels: dict[str, str]) -> str | None:
        """Create the config; its id, or None when one of that name exists already."""
        try:
            return through_election(
                f"taking lock {name}",
                lambda: self.client.api.create_config(name, b"medcell lock", labels=labels)["ID"],
                self.election_seconds,
            )
        except Conflict:
            return None

    def get(self, name: str) -> LockConfig | None:
        """The config of that exact name, or None."""
        try:
            attrs = through_election(
                f"reading lock {name}",
                lambda: self.client.api.inspect_config(name),
                self.election_seconds,
            )
        except NotFound:
            return None
        spec = attrs.get("Spec") or {}
        if spec.get("Name") != name:  # inspect also matches an id or an id's prefix
            return None
        return LockConfig(
            id=str(attrs.get("ID") or ""),
            version=int((attrs.get("Version") or {}).get("Index") or 0),
            labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
        )

    def relabel(self, name: str, lock: LockConfig, labels: dict[str, str]) -> bool:
        """Replace the labels of this very config (by id and version); False if it changed or
        went meanwhile (someone took the lock over)."""
        api = self.client.api
        spec = {"Name": name, "Labels": labels, "Data": None}

        def renew() -> None:
            spec["Data"] = api.inspect_config(lock.id)["Spec"].get("Data")
            response = api._post_json(
                api._url("/configs/{0}/update", lock.id),
                params={"version": lock.version},
                data=spec,
            )
            api._raise_for_status(response)

        try:
            through_election(f"renewing lock {name}", renew, self.election_seconds)
        except (NotFound, DockerError):
            return False
        return True

    def remove(self, config_id: str) -> bool:
        """Remove the config with this id; False if it is gone already."""
        try:
            with engine_errors("releasing a lock"):
                self.client.api.remove_config(config_id)
        except NotFound:
            return False
        return True

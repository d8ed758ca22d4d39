"""The Docker Swarm calls of cluster mode: plain data and our own errors come out of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from provisioner.host.errors import DockerError, DockerUnavailable, NotFound

SWARM_PORT = 2377
# Every node carries its own name in this label; a facility service is pinned to one node by a
# constraint on it (`node.labels.medcell.node==<node>`), so a facility never starts elsewhere.
NODE_LABEL = "medcell.node"
FACILITY_LABEL = "medcell.facility"
# What the throwaway probe container prints: its no_new_privs flag and its network devices.
_PROBE = "grep '^NoNewPrivs:' /proc/self/status; ls /sys/class/net"


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


@contextmanager
def _engine(action: str) -> Iterator[None]:
    """Translate docker-py's errors into ours where they enter."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise NotFound(f"{action}: {_explain(e)}") from e
    except docker.errors.APIError as e:
        raise DockerError(f"{action}: {_explain(e)}") from e
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        raise DockerUnavailable(f"{action}: no Docker Engine answers ({e})") from e
    except requests.exceptions.Timeout as e:
        raise DockerError(f"{action}: timed out") from e


def _explain(e: docker.errors.DockerException) -> str:
    explanation = getattr(e, "explanation", None)
    return " ".join(str(explanation or e).split())


def pin_constraint(node: str) -> str:
    """The placement constraint that keeps a service on one node."""
    return f"node.labels.{NODE_LABEL}=={node}"


class Swarm:
    """This host's Docker Engine, seen as a Swarm member."""

    def __init__(self, client=None):
        self._client = client

    @property
    def client(self):
        if self._client is None:
            with _engine("connecting to Docker"):
                self._client = docker.from_env()
        return self._client

    def local_state(self) -> dict:
        """`{"state", "manager", "node_id", "name"}` of this engine (state: inactive, active, …)."""
        with _engine("reading the engine's Swarm state"):
            info = self.client.info()
        swarm = info.get("Swarm") or {}
        return {
            "state": swarm.get("LocalNodeState") or "inactive",
            "manager": bool(swarm.get("ControlAvailable")),
            "node_id": swarm.get("NodeID") or "",
            "name": info.get("Name") or "",
        }

    def has_image(self, image: str) -> bool:
        with _engine(f"looking for image {image}"):
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                return False
        return True

    def hardening(self, image: str) -> EngineHardening:
        """Start a throwaway container the way a Swarm task gets one and look at what it has.

        Neither setting shows in `docker info` or `docker inspect`: only a running process does.
        """
        with _engine("checking the engine's settings with a throwaway container"):
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
        with _engine("creating the cluster"):
            self.client.swarm.init(
                advertise_addr=advertise_addr, listen_addr=f"0.0.0.0:{SWARM_PORT}"
            )
        return self.local_state()["node_id"]

    def join(self, manager: str, token: str, advertise_addr: str | None) -> str:
        """Join this engine to the Swarm that `manager` (HOST:PORT) belongs to."""
        with _engine(f"joining the cluster through {manager}"):
            self.client.swarm.join(
                remote_addrs=[manager],
                join_token=token,
                advertise_addr=advertise_addr,
                listen_addr=f"0.0.0.0:{SWARM_PORT}",
            )
        return self.local_state()["node_id"]

    def manager_join(self) -> tuple[str, str]:
        """The manager join token and this manager's HOST:PORT."""
        with _engine("reading the cluster's join token"):
            self.client.swarm.reload()
            token = self.client.swarm.attrs["JoinTokens"]["Manager"]
            node = self.client.nodes.get(self.local_state()["node_id"])
        address = (node.attrs.get("ManagerStatus") or {}).get("Addr") or ""
        return token, address

    def label_node(self, node_id: str, name: str) -> None:
        """Give a node its `medcell.node` label (what facility constraints match)."""
        with _engine(f"labelling node {name}"):
            node = self.client.nodes.get(node_id)
            spec = dict(node.attrs["Spec"])
            spec["Labels"] = {**(spec.get("Labels") or {}), NODE_LABEL: name}
            node.update(spec)

    def nodes(self) -> list[NodeInfo]:
        with _engine("listing the cluster's nodes"):
            nodes = self.client.nodes.list()
        return sorted((_node_info(n.attrs) for n in nodes), key=lambda n: n.name)

    def facility_services(self) -> list[FacilityService]:
        with _engine("listing facility services"):
            services = self.client.services.list(filters={"label": FACILITY_LABEL})
        return [_facility_service(s.attrs) for s in services]


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
    return FacilityService(
        slug=(spec.get("Labels") or {}).get(FACILITY_LABEL, ""),
        node=pinned[0] if pinned else None,
        replicas=int(replicas),
    )

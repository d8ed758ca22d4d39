"""Which node a new facility goes to: plain data in, a node's name out, no engine calls."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provisioner.host.config import AWAKE_FACILITY_BYTES, HOST_RESERVE_BYTES
from provisioner.host.errors import InvalidArgument, NoNode
from provisioner.host.swarm import FacilityService, NodeInfo

# A node label: `medcell node drain` keeps new facilities off the node (Swarm's own availability
# `drain` would also stop its gateway and supervisor, and `pause` would keep its facilities from
# waking: each wake is a new task).
DRAIN_LABEL = "medcell.drain"


@dataclass(frozen=True)
class Room:
    """What one node has left: memory after its awake facilities, and its facility count."""

    node: str
    free: int  # bytes
    facilities: int
    awake: int


def rooms(
    nodes: Iterable[NodeInfo],
    services: Iterable[FacilityService],
    per_facility: int = AWAKE_FACILITY_BYTES,
) -> dict[str, Room]:
    """Each node's room: its memory less what the host keeps and `per_facility` per awake one."""
    services = list(services)
    result = {}
    for node in nodes:
        mine = [s for s in services if s.node == node.name]
        awake = sum(1 for s in mine if s.replicas > 0)
        free = node.memory - HOST_RESERVE_BYTES - awake * per_facility
        result[node.name] = Room(node.name, free, len(mine), awake)
    return result


def _unfit(node: NodeInfo, room: Room, per_facility: int) -> str | None:
    """Why a node cannot take a new facility, or None."""
    if node.state != "ready":
        return node.state
    if node.availability != "active":
        return node.availability
    if node.labels.get(DRAIN_LABEL):
        return "drained"
    if room.free < per_facility:
        return f"full ({room.awake} awake, {max(room.free, 0) // 2**20} MiB free)"
    return None


def choose_node(
    nodes: Iterable[NodeInfo],
    services: Iterable[FacilityService],
    per_facility: int = AWAKE_FACILITY_BYTES,
) -> str:
    """The ready, active node with the most free memory, then the fewest facilities, then the
    first by name; NoNode names why each node was passed over."""
    nodes = list(nodes)
    room = rooms(nodes, services, per_facility)
    fit = [n for n in nodes if _unfit(n, room[n.name], per_facility) is None]
    if not fit:
        reasons = ", ".join(
            f"{n.name} is {_unfit(n, room[n.name], per_facility)}"
            for n in sorted(nodes, key=lambda n: n.name)
        )
        raise NoNode(f"no node can take a new facility: {reasons or 'the cluster has no nodes'}")
    best = min(fit, key=lambda n: (-room[n.name].free, room[n.name].facilities, n.name))
    return best.name


def check_node(nodes: Iterable[NodeInfo], name: str) -> str:
    """The operator's `--node NODE`: it must exist and be ready and active. Its room is the
    operator's call."""
    nodes = list(nodes)
    found = next((n for n in nodes if n.name == name), None)
    if found is None:
        known = ", ".join(sorted(n.name for n in nodes)) or "none"
        raise InvalidArgument(f"--node {name!r}: no such node (the nodes: {known})")
    for what, value, wanted in (
        ("state", found.state, "ready"),
        ("availability", found.availability, "active"),
    ):
        if value != wanted:
            raise InvalidArgument(
                f"--node {name}: its {what} is {value}, not {wanted}; it cannot take a facility"
            )
    if found.labels.get(DRAIN_LABEL):
        raise InvalidArgument(
            f"--node {name}: it is drained (`medcell node activate {name}` lets it take facilities)"
        )
    return name

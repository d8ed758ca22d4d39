"""Where a new facility goes (provisioner/host/placement.py): plain data, no engine."""

from __future__ import annotations

import pytest

from provisioner.host.config import AWAKE_FACILITY_BYTES, HOST_RESERVE_BYTES
from provisioner.host.errors import InvalidArgument, NoNode
from provisioner.host.placement import DRAIN_LABEL, check_node, choose_node, rooms
from provisioner.host.swarm import FacilityService, NodeInfo

GiB = 2**30
PER = AWAKE_FACILITY_BYTES


def node(name: str, memory: int = 8 * GiB, state="ready", availability="active") -> NodeInfo:
    return NodeInfo(
        id=f"id-{name}",
        name=name,
        address="10.0.0.1",
        state=state,
        availability=availability,
        manager=False,
        memory=memory,
        labels={"medcell.node": name},
    )


def on(name: str, awake: int = 0, asleep: int = 0) -> list[FacilityService]:
    return [FacilityService(f"{name}-a{i}", name, 1) for i in range(awake)] + [
        FacilityService(f"{name}-s{i}", name, 0) for i in range(asleep)
    ]


def test_an_empty_cluster_of_equal_nodes_fills_the_first_by_name():
    assert choose_node([node("node3"), node("node1"), node("node2")], []) == "node1"


def test_the_node_with_most_free_memory_wins():
    nodes = [node("node1", 8 * GiB), node("node2", 16 * GiB), node("node3", 12 * GiB)]
    assert choose_node(nodes, []) == "node2"


def test_awake_facilities_take_room_and_asleep_ones_do_not():
    nodes = [node("node1"), node("node2")]
    assert choose_node(nodes, on("node1", awake=1)) == "node2"
    assert choose_node(nodes, on("node1", asleep=50)) == "node2"  # same memory: fewer facilities
    assert choose_node(nodes, on("node1", asleep=50) + on("node2", awake=1)) == "node1"


def test_equal_free_memory_goes_to_the_node_with_fewer_facilities():
    nodes = [node("node1"), node("node2"), node("node3")]
    services = (
        on("node1", awake=2, asleep=3) + on("node2", awake=2, asleep=1) + on("node3", awake=2)
    )
    assert choose_node(nodes, services) == "node3"


def test_a_bigger_node_takes_more_awake_facilities_before_a_smaller_one():
    nodes = [node("big", 4 * GiB), node("small", 3 * GiB)]
    # big has 1 GiB more: 16 awake facilities' worth.
    assert choose_node(nodes, on("big", awake=15)) == "big"
    assert choose_node(nodes, on("big", awake=16)) == "small"  # equal room, fewer facilities
    assert choose_node(nodes, on("big", awake=17)) == "small"


@pytest.mark.parametrize(
    "state, availability",
    [("down", "active"), ("unknown", "active"), ("disconnected", "active"),
     ("ready", "drain"), ("ready", "pause")],
)  # fmt: skip
def test_only_ready_active_nodes_qualify(state, availability):
    nodes = [node("node1", 64 * GiB, state=state, availability=availability), node("node2")]
    assert choose_node(nodes, []) == "node2"


def test_no_node_qualifies_says_why_for_each():
    nodes = [
        node("node3", state="down"),
        node("node1", availability="drain"),
        node("node2", memory=HOST_RESERVE_BYTES + 2 * PER),
    ]
    with pytest.raises(NoNode) as raised:
        choose_node(nodes, on("node2", awake=2))
    assert str(raised.value) == (
        "no node can take a new facility: node1 is drain, node2 is full (2 awake, 0 MiB free), "
        "node3 is down"
    )


def test_a_node_with_room_for_exactly_one_more_qualifies():
    memory = HOST_RESERVE_BYTES + 3 * PER
    assert choose_node([node("node1", memory)], on("node1", awake=2)) == "node1"
    with pytest.raises(NoNode, match="node1 is full"):
        choose_node([node("node1", memory)], on("node1", awake=3))


def test_an_empty_cluster_is_refused():
    with pytest.raises(NoNode, match="the cluster has no nodes"):
        choose_node([], [])


def test_facilities_pinned_nowhere_or_elsewhere_do_not_count():
    services = [FacilityService("lost", None, 1)] + on("gone", awake=40)
    assert rooms([node("node1")], services)["node1"].facilities == 0
    assert choose_node([node("node1"), node("node2")], services) == "node1"


def test_a_custom_figure_per_facility():
    nodes = [node("node1", 8 * GiB), node("node2", 7 * GiB)]
    assert choose_node(nodes, on("node1", awake=1), per_facility=GiB) == "node2"
    assert choose_node(nodes, on("node1", awake=1), per_facility=GiB // 2) == "node1"


def test_the_operators_node_must_exist_be_ready_and_active():
    nodes = [node("node1"), node("node2", state="down"), node("node3", availability="drain")]
    assert check_node(nodes, "node1") == "node1"
    with pytest.raises(InvalidArgument, match=r"--node 'node9': no such node \(the nodes: node1, "):
        check_node(nodes, "node9")
    with pytest.raises(InvalidArgument, match="--node node2: its state is down, not ready"):
        check_node(nodes, "node2")
    with pytest.raises(
        InvalidArgument, match="--node node3: its availability is drain, not active"
    ):
        check_node(nodes, "node3")


def _drained(name: str) -> NodeInfo:
    found = node(name, 64 * GiB)
    return NodeInfo(**{**found.__dict__, "labels": {**found.labels, DRAIN_LABEL: "true"}})


def test_a_drained_node_takes_no_new_facility_however_much_room_it_has():
    assert choose_node([_drained("node1"), node("node2")], []) == "node2"
    with pytest.raises(NoNode, match="node1 is drained"):
        choose_node([_drained("node1")], [])
    with pytest.raises(InvalidArgument, match="drained"):
        check_node([_drained("node1"), node("node2")], "node1")

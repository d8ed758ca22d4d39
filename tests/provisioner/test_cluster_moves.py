# ruff: noqa: F811 (the fixtures engine and medcell are test_cluster_facilities's)
"""`facility move` and `node drain` in cluster mode, against the fake Swarm manager and fake node
APIs of test_cluster_facilities: what each node is asked, in which order, and a failure rolled
back. The real thing is in tests/cluster/test_move.py."""

from __future__ import annotations

import pytest

from provisioner.host.errors import FacilityCommandFailed
from tests.provisioner.test_cluster_facilities import (  # noqa: F401
    ADDRESSES,
    FakeNodeAPI,
    FakeNodeClient,
    engine,
    error,
    medcell,
    ok,
    service_spec,
)

MANIFEST = {
    "backup_id": None,
    "facility": "praxis",
    "created": "2026-12-05T13:00:00Z",
    "expires": "2026-12-13T13:00:00Z",
}


class MovingClient(FakeNodeClient):
    def hold(self, slug: str, held: bool) -> dict:
        self._call("hold", slug, held)
        return {"slug": slug, "held": held}

    def backup(self, slug: str, backup_id: str, key: bytes) -> dict:
        self._call("backup", slug)
        manifest = {**MANIFEST, "backup_id": backup_id, "facility": slug}
        return {"manifest": manifest, "meta": {"name": "Praxis", "retention": "7d"}, "sizes": {}}

    def copy_backup_to(self, other, backup_id: str, name: str) -> int:
        self._call("copy", name, other.address)
        return 10

    def restore(self, slug: str, backup_id: str, key: bytes, tombstones: list) -> dict:
        self._call("restore", slug)
        return {"conversations": 3}

    def release(self, slug: str) -> dict:
        self._call("release", slug)
        self.api.data[self.address].discard(slug)
        return {"slug": slug, "shredded": 2}

    def drop_backup(self, backup_id: str) -> bool:
        self._call("drop_backup")
        return True


class MovingAPI(FakeNodeAPI):
    def client(self, address: str, tls_dir, timeout: float = 30.0) -> MovingClient:
        return MovingClient(self, address)


@pytest.fixture
def nodes(config) -> MovingAPI:
    return MovingAPI(config)


def _steps(nodes: MovingAPI) -> list[tuple[str, str]]:
    names = {a: n for n, a in ADDRESSES.items()}
    wanted = ("hold", "backup", "prepare", "restore", "release")
    return [(names[a], m) for a, m, _ in nodes.calls if m in wanted]


def test_a_move_holds_backs_up_restores_repins_and_releases_the_old_node(medcell, engine, nodes):
    ok(medcell("facility", "create", "praxis", "--node", "node2", "--json"))
    nodes.calls.clear()

    moved = ok(medcell("facility", "move", "praxis", "--to", "node3", "--json"))

    assert (moved["from"], moved["to"], moved["conversations"]) == ("node2", "node3", 3)
    assert _steps(nodes) == [
        ("node2", "hold"),
        ("node2", "backup"),
        ("node3", "prepare"),
        ("node3", "restore"),
        ("node2", "release"),
    ]
    spec = service_spec(engine, "praxis")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.medcell.node==node3"]
    # The new node's supervisor finds it by the service's node label at once.
    assert spec["Labels"]["medcell.node"] == "node3"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    for _, facilities in nodes.maps.values():
        assert facilities == {"praxis": {"node": "node3", "address": "10.0.0.3"}}


def test_a_failed_restore_leaves_it_serving_from_its_old_node(medcell, engine, nodes):
    ok(medcell("facility", "create", "praxis", "--node", "node2", "--json"))
    nodes.calls.clear()
    nodes.failing["restore"] = FacilityCommandFailed("restore failed: disk full")

    result = medcell("facility", "move", "praxis", "--to", "node3")

    assert "disk full" in error(result)
    spec = service_spec(engine, "praxis")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.medcell.node==node2"]
    assert spec["Labels"]["medcell.node"] == "node2"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert ("node3", "release") in _steps(nodes)
    assert ("node2", "release") not in _steps(nodes)
    assert [args for a, m, args in nodes.calls if m == "hold"] == [
        ("praxis", True),
        ("praxis", False),
    ]
    assert "praxis" in nodes.data[ADDRESSES["node2"]]


def test_a_move_to_its_own_node_or_a_drained_one_is_refused(medcell, engine, nodes):
    ok(medcell("facility", "create", "praxis", "--node", "node2", "--json"))
    assert "on node2 already" in error(medcell("facility", "move", "praxis", "--to", "node2"))
    ok(medcell("node", "drain", "node3", "--json"))
    assert "drained" in error(medcell("facility", "move", "praxis", "--to", "node3"))
    assert "node4" in error(medcell("facility", "move", "praxis", "--to", "node4"))


def test_drain_moves_every_facility_off_and_activate_lets_it_take_new_ones(medcell, engine, nodes):
    ok(medcell("facility", "create", "one", "--node", "node1", "--json"))
    ok(medcell("facility", "create", "two", "--node", "node1", "--json"))

    drained = ok(medcell("node", "drain", "node1", "--json"))
    labels = dict(engine.swarm.nodes_by_name["node1"].attrs["Spec"]["Labels"])
    created = ok(medcell("facility", "create", "three", "--json"))
    ok(medcell("node", "activate", "node1", "--json"))

    assert [m["slug"] for m in drained["moved"]] == ["one", "two"]
    assert {m["to"] for m in drained["moved"]} <= {"node2", "node3"}
    assert labels["medcell.drain"] == "true"
    assert created["node"] != "node1"
    assert "medcell.drain" not in engine.swarm.nodes_by_name["node1"].attrs["Spec"]["Labels"]
    # Swarm's own availability stays active: the node's gateway and supervisor keep running.
    assert engine.swarm.nodes_by_name["node1"].attrs["Spec"]["Availability"] == "active"


def test_delete_has_every_node_forget_the_facilitys_backups(medcell, engine, nodes):
    ok(medcell("facility", "create", "praxis", "--node", "node2", "--json"))

    ok(medcell("facility", "delete", "praxis", "--yes", "--json"))

    forgot = {a for a, m, args in nodes.calls if m == "forget" and args == ("praxis",)}
    assert forgot == set(ADDRESSES.values())

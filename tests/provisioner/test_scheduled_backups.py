"""Scheduled backups in cluster mode: made on the facility's node, stored on another node over
real mutual TLS, the key on every manager; the facility's real backup and restore commands."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from provisioner.host import backup_keys, backup_transfer
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.manager_swarm import ManagerSwarm
from provisioner.host.node_api import NodeClient
from provisioner.host.swarm import CERT_LABEL, FacilityService, NodeInfo, ServiceState, SwarmConfigs
from provisioner.supervisor.metrics import Metrics
from provisioner.supervisor.scaling import ManagerScaling
from provisioner.supervisor.scheduled_backups import KEEP, ScheduledBackups, store_node
from tests.clock import FakeClock
from tests.provisioner.fakeconfigs import ConfigClient, ConfigStore
from tests.provisioner.test_backup_transfer import Node, _facility_with_a_message, tls_dir  # noqa: F401
from tests.provisioner.test_backups import messages

HOUR = 3600


class Cluster:
    """What a manager's engine says: the nodes (the two test nodes' APIs) and the services;
    its client holds the cluster's locks."""

    def __init__(self, nodes: list[Node]):
        self.locks = ConfigStore()
        self.client = ConfigClient(self.locks)
        self.infos = [
            NodeInfo(
                id=f"id{i}",
                name=f"node{i + 1}",
                address=f"127.0.0.1:{n.server.port}",
                state="ready",
                availability="active",
                manager=True,
                memory=8 * 2**30,
                labels={},
            )
            for i, n in enumerate(nodes)
        ]

    def local_state(self) -> dict:
        return {"state": "active", "manager": True, "node_id": "id0", "name": "node1"}

    def nodes(self) -> list[NodeInfo]:
        return self.infos

    def facility_services(self) -> list[FacilityService]:
        return [FacilityService("praxis", "node1", 1)]


@pytest.fixture
def nodes(tmp_path, tls_dir):  # noqa: F811
    made = [Node(name, tmp_path / name, tls_dir) for name in ("node1", "node2")]
    yield made
    for node in made:
        node.close()


@pytest.fixture
def scheduled(nodes, tls_dir):  # noqa: F811
    node1, _ = nodes
    clock = FakeClock()
    config = dataclasses.replace(node1.config, backup_every=HOUR)
    cluster = Cluster(nodes)
    backups = ScheduledBackups(
        config,
        node1.engine,
        lambda: cluster,
        clock,
        client=lambda address, _tls: NodeClient(address, tls_dir, timeout=20),
    )
    return backups, cluster, clock


def test_a_scheduled_backup_is_stored_on_another_node_with_its_key_on_every_manager(
    nodes, scheduled
):
    node1, node2 = nodes
    conversation = _facility_with_a_message(node1)
    backups, cluster, _ = scheduled

    done = backups.run_round(cluster)

    assert done == 1
    assert backup_transfer.held(node1.config) == []
    (stored,) = backup_transfer.held(node2.config)
    assert stored["facility"] == "praxis"
    for node in nodes:
        record = backup_keys.load(node.config, stored["backup_id"])
        assert record is not None and record.facility == "praxis"
    # It restores (here: over the facility's own volumes on node1, from node2's copy).
    for name in backup_transfer.FILES:
        node2.client.copy_backup_to(node1.client, stored["backup_id"], name)
    result = node1.client.restore("praxis", stored["backup_id"], record.key, [])
    assert result["conversations"] == 1
    assert messages(node1.volumes, conversation) == ["Röntgen ok"]


def test_a_facility_is_backed_up_again_only_after_the_interval_and_the_newest_are_kept(
    nodes, scheduled
):
    node1, node2 = nodes
    _facility_with_a_message(node1)
    backups, cluster, clock = scheduled

    rounds = [backups.run_round(cluster)]
    clock.advance(HOUR - 60)
    rounds.append(backups.run_round(cluster))
    for _ in range(KEEP + 1):
        clock.advance(HOUR)
        rounds.append(backups.run_round(cluster))

    assert rounds == [1, 0] + [1] * (KEEP + 1)
    assert len(backup_transfer.held(node2.config)) == KEEP
    clock.advance(600)
    metrics = Metrics()
    metrics.watch_backups(backups.ages)
    assert b'medcell_backup_age_seconds{facility="praxis"} 600.0' in metrics.exposition()


def test_a_facility_another_command_holds_is_backed_up_at_a_later_round(
    nodes, scheduled, config, caplog
):
    node1, node2 = nodes
    _facility_with_a_message(node1)
    backups, cluster, _ = scheduled
    # A `facility move` run on another manager holds the facility (it may be releasing this
    # node's copy): a backup now could leave a copy of it behind.
    mover = SwarmLocks(config, SwarmConfigs(ConfigClient(cluster.locks)), host="node2")

    with mover.hold("praxis"), caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        assert backups.run_round(cluster) == 0
    assert backup_transfer.held(node1.config) == backup_transfer.held(node2.config) == []
    assert backup_keys.all_keys(node1.config) == []
    deferred = [
        r.fields
        for r in caplog.records
        if getattr(r, "fields", {}).get("event") == ("scheduled_backup_deferred")
    ]
    assert deferred == [{"event": "scheduled_backup_deferred", "slug": "praxis", "reason": "busy"}]

    assert backups.run_round(cluster) == 1  # the next round, the move done
    assert len(backup_transfer.held(node2.config)) == 1
    assert cluster.locks.by_name == {}  # the backup's own lock is gone again


def test_an_expired_held_backup_is_dropped(nodes, scheduled):
    node1, node2 = nodes
    _facility_with_a_message(node1)
    backups, cluster, clock = scheduled
    backups.run_round(cluster)
    (stored,) = backup_transfer.held(node2.config)

    dropped = backup_transfer.drop_expired(node2.config, clock() + 9 * 86400)

    assert dropped == [stored["backup_id"]]
    assert backup_transfer.held(node2.config) == []


def test_the_store_node_is_never_the_facilitys_own_and_stays_the_same():
    infos = Cluster.__new__(Cluster)
    infos.infos = [
        NodeInfo(f"id{i}", f"node{i}", f"10.0.0.{i}", "ready", "active", True, 1, {})
        for i in (1, 2, 3)
    ]
    chosen = {store_node(f"f{i}", "node1", infos.infos).name for i in range(30)}
    assert chosen == {"node2", "node3"}
    assert store_node("praxis", "node2", infos.infos) == store_node("praxis", "node2", infos.infos)


class WorkerView:
    """node1 as a Swarm worker: its engine answers no Swarm call."""

    def local_state(self) -> dict:
        return {"state": "active", "manager": False, "node_id": "id0", "name": "node1"}


class ManagerView(Cluster):
    """What node2, the only manager, sees: node1 a worker showing the test certificate."""

    def __init__(self, nodes: list[Node]):
        super().__init__(nodes)
        worker, manager = self.infos
        self.infos = [
            dataclasses.replace(worker, manager=False, labels={CERT_LABEL: "node"}),
            manager,
        ]

    def facility_services(self, node: str | None = None) -> list[FacilityService]:
        return super().facility_services()

    def service(self, name: str) -> ServiceState | None:
        if name != "medcell-praxis":
            return None
        return ServiceState(name, "praxis", "node1", 1, None)


def test_a_worker_backs_up_its_facility_through_a_managers_node_api(
    nodes,
    tls_dir,  # noqa: F811
    caplog,
):
    node1, node2 = nodes
    _facility_with_a_message(node1)
    manager = ManagerView(nodes)
    node2.server.service.scaling = ManagerScaling(node2.config, lambda: manager)
    managers = ManagerSwarm(
        "medcell", lambda: ("127.0.0.9", ["127.0.0.1"]), tls_dir, port=node2.server.port
    )
    backups = ScheduledBackups(
        dataclasses.replace(node1.config, backup_every=HOUR),
        node1.engine,
        WorkerView,
        FakeClock(),
        client=lambda address, _tls: NodeClient(address, tls_dir, timeout=20),
        remote=lambda: managers,
    )
    mover = SwarmLocks(node2.config, SwarmConfigs(ConfigClient(manager.locks)), host="node2")

    with mover.hold("praxis"), caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        assert backups.run_round(WorkerView()) == 0
    assert backup_transfer.held(node2.config) == []
    deferred = [
        r.fields["slug"]
        for r in caplog.records
        if getattr(r, "fields", {}).get("event") == "scheduled_backup_deferred"
    ]
    assert deferred == ["praxis"]

    assert backups.run_round(WorkerView()) == 1

    assert backup_transfer.held(node1.config) == []
    (stored,) = backup_transfer.held(node2.config)  # on the other node
    assert stored["facility"] == "praxis"
    record = backup_keys.load(node2.config, stored["backup_id"])  # on the manager
    assert record is not None and record.facility == "praxis"
    assert backup_keys.all_keys(node1.config) == []  # never on the worker
    assert manager.locks.by_name == {}  # the lock node2 held for node1 is given back

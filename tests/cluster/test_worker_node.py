"""A worker node on the lab: node3 demoted (its engine answers no Swarm call), a facility on it is
slept by node3's supervisor and woken by a request through node1's gateway, both scaled through a
manager's node API; its scheduled backup (MEDCELL_BACKUP_EVERY) is stored on another node with its
key on both managers. node3 is a manager again afterwards, whatever happened."""

from __future__ import annotations

import json

import docker
import pytest

from devsupport import eventually
from provisioner.host.swarm import Swarm
from tests.cluster.conftest import NODES
from tests.cluster.test_evacuate import _held
from tests.cluster.test_facility_lifecycle import Gateway

pytestmark = pytest.mark.lab

SLUG = "on-a-worker"
SLEEP_WITHIN = 150  # discovery (30 s), its idle time of 15 s, the sleep handshake, with room


def _engine(lab, node: str) -> docker.DockerClient:
    return docker.DockerClient(
        base_url=f"unix://{lab.directory / node / 'docker.sock'}", timeout=60
    )


def _roles(lab) -> dict[str, str]:
    """Each node's role as node1's manager sees it: leader, reachable (a manager), or worker."""
    roles = {}
    for node in _engine(lab, "node1").nodes.list():
        status = node.attrs.get("ManagerStatus") or {}
        name = node.attrs["Description"]["Hostname"]
        if status.get("Leader"):
            roles[name] = "leader"
        else:
            roles[name] = status.get("Reachability", "worker")
    return roles


def _managers_ready(roles: dict[str, str]) -> bool:
    return (
        sorted(roles) == list(NODES)
        and set(roles.values()) <= {"leader", "reachable"}
        and (list(roles.values()).count("leader") == 1)
    )


@pytest.fixture
def worker3(lab):
    """node3 demoted to a worker; promoted again afterwards, with three managers and a leader
    before the next test runs; the facility a test made there deleted first."""
    demoted = lab.run("node1", "docker", "node", "demote", "node3")
    try:
        assert demoted.returncode == 0, demoted.stderr
        roles = eventually(lambda: _roles(lab), lambda r: r.get("node3") == "worker", 60)
        assert roles["node3"] == "worker"
        lab.settled(answers=3)
        yield lab
    finally:
        for _ in range(3):
            gone = lab.run("node1", "medcell", "facility", "delete", SLUG, "--yes", timeout=300)
            if gone.returncode == 0 or "no facility" in gone.stderr:
                break
            lab.settled(answers=3)
        promoted = lab.run("node1", "docker", "node", "promote", "node3")
        roles = eventually(lambda: _roles(lab), _managers_ready, 180)
        lab.settled()
        assert gone.returncode == 0 or "no facility" in gone.stderr, gone.stderr[-800:]
        assert promoted.returncode == 0, promoted.stderr
        assert _managers_ready(roles), roles


def test_a_workers_facility_sleeps_wakes_and_is_backed_up_through_the_managers(worker3, tmp_path):
    lab = worker3
    tmp_path.chmod(0o755)  # the lab's nodes see this machine's /tmp; root runs both
    swarm = Swarm(_engine(lab, "node1"))
    made = lab.medcell_json("node1", "facility", "create", SLUG, "--node", "node3", "--idle", "15s")
    assert made["node"] == "node3"

    # node3's supervisor puts it to sleep after its idle time, scaled by a manager for it.
    service = f"medcell-{SLUG}"
    replicas = eventually(lambda: swarm.service(service).replicas, lambda r: r == 0, SLEEP_WITHIN)
    assert replicas == 0
    # A request through node1's gateway wakes it through node3's activator and supervisor.
    status, _ = Gateway(lab, "node1", SLUG, tmp_path).call("GET", "/healthz")
    assert status == 200
    assert swarm.service(service).replicas == 1

    # Scheduled backups on (every node's supervisor gets the setting): node3 makes its
    # facility's, stores it on another node, and hands its key to both managers.
    up = lab.run("node1", "env", "MEDCELL_BACKUP_EVERY=15s", "medcell", "up", timeout=600)
    assert up.returncode == 0, up.stderr[-2000:]
    held = eventually(lambda: [h for h in _held(lab, SLUG) if h[0] != "node3"], bool, 150)
    assert held, _held(lab, SLUG)
    node, backup_id = held[0]
    assert node in ("node1", "node2")
    for manager in ("node1", "node2"):
        key = lab.directory / manager / "home/backups/keys" / f"{backup_id}.json"
        assert key.exists(), manager
        assert json.loads(key.read_text())["facility"] == SLUG
    assert not (lab.directory / "node3/home/backups/keys" / f"{backup_id}.json").exists()

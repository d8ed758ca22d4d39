"""Backups, moves and drains on the lab: a backup made from node1 of a facility on node3 (its key
on every manager) restored over it; a move while messages keep arriving (every acknowledged one
readable afterwards, 503 with Retry-After meanwhile, nothing left on the old node); a drain that
empties a node and keeps new facilities off it while its gateway and supervisor keep running."""

from __future__ import annotations

import json
import threading
import time

import pytest

from devsupport import eventually
from provisioner.host.swarm import pin_constraint
from tests.cluster.conftest import NODES
from tests.cluster.test_facility_lifecycle import Gateway, _node_client, _swarm

pytestmark = pytest.mark.lab


def _login(gateway: Gateway, made: dict) -> None:
    """Log in as the first admin, once the gateway serves the facility (its nginx applies a
    new routes map a moment after the node took it)."""
    login = {"username": made["admin_user"], "password": made["admin_password"]}
    status, raw = eventually(
        lambda: gateway.call("POST", "/api/v1/login", login), lambda seen: seen[0] == 200, 60
    )
    assert status == 200, raw[:500]
    gateway.token = json.loads(raw)["token"]


def _bodies(gateway: Gateway, conversation: str) -> list[str]:
    listed = gateway.json("GET", f"/api/v1/conversations/{conversation}/messages", 200)
    return [m["body"] for m in listed["messages"]]


def _nothing_of(lab, node: str, slug: str) -> dict:
    """What a node still holds of a facility: containers, volumes, its socket folder."""
    client = _node_client(lab, node)
    labels = {"label": [f"medcell.facility={slug}"]}
    # The node removes containers while this looks: one gone between the list and its inspect
    # is gone, not an error.
    listed = client.containers.list(all=True, filters=labels, ignore_removed=True)
    return {
        "containers": [c.name for c in listed],
        "volumes": [v.name for v in client.volumes.list(filters=labels)],
        "socket_dir": (lab.directory / node / "home" / "run" / "facilities" / slug).exists(),
    }


def test_a_backup_from_any_manager_keeps_its_key_on_every_manager_and_restores(
    lab, created, scratch
):
    made = created("kept-one", "--node", "node3")
    gateway = Gateway(lab, "node1", "kept-one", scratch)
    _login(gateway, made)
    conversation = gateway.json("POST", "/api/v1/conversations", 201, {"title": "Knee"})["id"]
    messages = f"/api/v1/conversations/{conversation}/messages"
    gateway.json("POST", messages, 201, {"body": "before the backup"})
    target = scratch / "backup"

    backup = lab.medcell_json("node1", "facility", "backup", "kept-one", str(target))
    _login(gateway, made)
    gateway.json("POST", messages, 201, {"body": "after the backup"})
    restored = lab.medcell_json("node2", "facility", "restore", "kept-one", str(target), "--yes")

    assert sorted(p.name for p in target.iterdir()) == [
        "keys.sealed",
        "manifest.json",
        "snapshot.sealed",
    ]
    for node in NODES:  # every node of the lab is a manager
        key = lab.directory / node / "home" / "backups" / "keys" / f"{backup['backup_id']}.json"
        assert key.exists(), node
        held = lab.directory / node / "home" / "backups" / "held" / backup["backup_id"]
        assert not held.exists(), node
    assert (restored["node"], restored["conversations"]) == ("node3", 1)
    _login(gateway, made)  # a restore ends every session
    assert _bodies(gateway, conversation) == ["before the backup"]


def test_a_move_keeps_every_acknowledged_message_and_leaves_nothing_behind(lab, created, scratch):
    made = created("moving", "--node", "node2")
    writer = Gateway(lab, "node1", "moving", scratch)
    _login(writer, made)
    conversation = writer.json("POST", "/api/v1/conversations", 201, {"title": "Knee"})["id"]
    messages = f"/api/v1/conversations/{conversation}/messages"
    acknowledged: list[str] = []
    statuses: list[tuple[int, bool]] = []
    unanswered: list[tuple[float, int, str]] = []  # when, curl's exit code, its message
    done = threading.Event()

    def write() -> None:
        headers = scratch / "headers"
        n = 0
        while not done.is_set():
            n += 1
            body = json.dumps({"body": f"message {n}"})
            command = [
                "curl", "-sS", "-k", "--max-time", "30", "-D", str(headers),
                "--resolve", "moving.localhost:8443:127.0.0.1", "-o", "/dev/null",
                "-w", "%{http_code}", "-H", f"Authorization: Bearer {writer.token}",
                "-H", "Content-Type: application/json", "--data-binary", body,
                f"https://moving.localhost:8443{messages}",
            ]  # fmt: skip
            result = lab.run("node1", *command, timeout=60)
            status = int(result.stdout.strip() or 0)
            retry = "retry-after:" in headers.read_text().lower() if headers.exists() else False
            statuses.append((status, retry))
            if status == 0:  # no answer at all: what curl saw, for the failure message
                unanswered.append((time.monotonic(), result.returncode, result.stderr.strip()))
            if status == 201:
                acknowledged.append(f"message {n}")
            elif status == 401:  # the restore on the new node ended the session
                _login(writer, made)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        eventually(lambda: len(acknowledged), lambda n: n >= 2, timeout=60)
        moved_at = [time.monotonic()]
        moved = lab.medcell_json("node1", "facility", "move", "moving", "--to", "node3")
        moved_at.append(time.monotonic())
        before = len(acknowledged)
        # A few more writes land on the new node.
        eventually(lambda: len(acknowledged), lambda n: n >= before + 2, timeout=120)
    finally:
        done.set()
        thread.join(timeout=120)

    assert (moved["from"], moved["to"]) == ("node2", "node3")
    spec = _swarm(lab).client.api.inspect_service("medcell-moving")["Spec"]
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == [pin_constraint("node3")]
    assert _swarm(lab).wait_running("medcell-moving", 60).node == "node3"
    assert {s for s, _ in statuses} <= {201, 401, 503}, (statuses, unanswered, moved_at)
    assert any(s == 503 for s, _ in statuses), statuses
    assert all(retry for s, retry in statuses if s == 503), statuses
    assert _nothing_of(lab, "node2", "moving") == {
        "containers": [],
        "volumes": [],
        "socket_dir": False,
    }
    reader = Gateway(lab, "node2", "moving", scratch)
    _login(reader, made)
    bodies = _bodies(reader, conversation)
    assert acknowledged and set(acknowledged) <= set(bodies)
    assert lab.medcell_json("node1", "facility", "show", "moving")["node"] == "node3"


def test_drain_empties_a_node_and_keeps_new_facilities_off_it(lab, created, scratch):
    made = created("drained-one", "--node", "node3")
    gateway = Gateway(lab, "node1", "drained-one", scratch)
    _login(gateway, made)
    gateway.json("POST", "/api/v1/conversations", 201, {"title": "Knee"})

    drained = lab.medcell_json("node2", "node", "drain", "node3")
    try:
        nodes = lab.nodes()
        refused = lab.run("node1", "medcell", "facility", "create", "nope", "--node", "node3")
        status = lab.medcell_json("node1", "status")
        _login(gateway, made)
        listed = gateway.json("GET", "/api/v1/conversations", 200)
    finally:
        activated = lab.medcell_json("node1", "node", "activate", "node3")

    assert [m["slug"] for m in drained["moved"]] == ["drained-one"]
    assert drained["moved"][0]["to"] in ("node1", "node2")
    assert (nodes["node3"]["availability"], nodes["node3"]["facilities"]) == ("drained", 0)
    assert refused.returncode != 0 and "drained" in refused.stderr
    # Its gateway and supervisor kept running (Swarm's own drain would have stopped them).
    assert status["gateway_nodes"]["node3"] in ("running", "starting")
    assert status["supervisor_nodes"]["node3"] == "running"
    assert _nothing_of(lab, "node3", "drained-one")["volumes"] == []
    assert len(listed["conversations"]) == 1
    assert activated == {"node": "node3", "drained": False}
    assert lab.nodes()["node3"]["availability"] == "active"

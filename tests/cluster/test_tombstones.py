"""Tombstones on every manager (lab): a conversation deleted in a facility on node3 leaves its
tombstone in node1's and node2's stores within about a minute (the supervisor's collection), so
it survives the loss of node3; deleting the facility forgets them everywhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cluster.test_facility_lifecycle import Gateway

pytestmark = pytest.mark.lab

WAIT_SECONDS = 180  # two collection rounds and a push


def _kept(lab, node: str, slug: str) -> list[dict]:
    path = lab.directory / node / "home" / "backups" / "tombstones" / f"{slug}.json"
    try:
        return json.loads(path.read_text())["tombstones"]
    except FileNotFoundError:
        return []


def _until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def test_a_deletions_tombstone_reaches_every_manager(lab, tmp_path: Path):
    tmp_path.chmod(0o755)
    made = lab.medcell_json("node1", "facility", "create", "stones", "--node", "node3")
    try:
        gateway = Gateway(lab, "node1", "stones", tmp_path)  # forwarded to node3
        login = {"username": made["admin_user"], "password": made["admin_password"]}
        # `create` returns once every node took the routes map, not once each gateway reloaded.
        answered: list = []
        assert _until(
            lambda: (
                answered.append(gateway.call("POST", "/api/v1/login", login))
                or answered[-1][0] != 404
            ),
            30,
        )
        status, raw = answered[-1]
        assert status == 200, raw[:300]
        gateway.token = json.loads(raw)["token"]
        conversation = gateway.json("POST", "/api/v1/conversations", 201, {"title": "Knee"})
        gateway.json("DELETE", f"/api/v1/conversations/{conversation['id']}", 200)
        managers = ("node1", "node2", "node3")
        assert _until(
            lambda: all(len(_kept(lab, n, "stones")) == 1 for n in managers), WAIT_SECONDS
        )
        kept = {json.dumps(_kept(lab, n, "stones")) for n in managers}
        assert len(kept) == 1  # the same tombstone everywhere
        (stone,) = json.loads(kept.pop())
        assert set(stone) == {"mark", "deleted_at", "reason"} and stone["reason"] == "staff"
    finally:
        lab.run("node1", "medcell", "facility", "delete", "stones", "--yes", timeout=300)
    assert all(_kept(lab, n, "stones") == [] for n in ("node1", "node2", "node3"))

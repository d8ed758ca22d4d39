"""Every facility command on the lab, run on another manager than the one that made it: sleep,
wake, stop, start, rotate-key, set-quota and receipts reach the facility on its own node."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab


def _status(lab, node: str, slug: str) -> str:
    rows = lab.medcell_json(node, "facility", "list")
    return next(r["status"] for r in rows if r["slug"] == slug)


def test_facility_commands_from_any_manager_reach_its_node(lab):
    made = lab.medcell_json("node1", "facility", "create", "cmds", "--node", "node3")
    assert made["node"] == "node3"
    try:
        assert lab.medcell_json("node2", "facility", "sleep", "cmds")["status"] == "asleep"
        assert _status(lab, "node1", "cmds") == "asleep"
        assert lab.medcell_json("node2", "facility", "wake", "cmds")["status"] == "running"
        assert _status(lab, "node1", "cmds") == "running"

        assert lab.medcell_json("node2", "facility", "stop", "cmds")["status"] == "stopped"
        assert _status(lab, "node1", "cmds") == "stopped"
        refused = lab.run("node1", "medcell", "facility", "rotate-key", "cmds")
        assert refused.returncode == 1
        assert refused.stderr.strip().endswith("Error: facility cmds is stopped; start it first")
        assert lab.medcell_json("node1", "facility", "start", "cmds")["status"] == "running"
        assert _status(lab, "node2", "cmds") == "running"

        lab.medcell_json("node2", "facility", "sleep", "cmds")
        rotated = lab.run("node2", "medcell", "facility", "rotate-key", "cmds", "--json")
        assert rotated.returncode == 0, rotated.stderr
        assert "waking cmds to rotate its key" in rotated.stderr
        quota = lab.medcell_json("node1", "facility", "set-quota", "cmds", "1GiB")
        assert quota["quota"] == "1GiB"
        receipts = lab.medcell_json("node2", "facility", "receipts", "cmds")
        assert receipts["receipts"] == [] and receipts["receipt_key"]["public_key"]
    finally:
        lab.run("node1", "medcell", "facility", "delete", "cmds", "--yes", timeout=300)

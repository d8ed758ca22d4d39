"""The CLI's facility lifecycle on the lab: create from node1 (placed, or on the node asked for),
a patient-facing request through node1's gateway to a facility on node3 (login, GET, POST with a
body, a 20 MiB attachment up and down), and delete leaving no byte of it on any node."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import docker
import pytest

from provisioner.host import placement
from provisioner.host.swarm import Swarm, pin_constraint
from tests.cluster.conftest import NODES

pytestmark = pytest.mark.lab

MiB = 2**20


def _swarm(lab) -> Swarm:
    return Swarm(
        docker.DockerClient(
            base_url=f"unix://{lab.directory / 'node1' / 'docker.sock'}", timeout=60
        )
    )


def _node_client(lab, node: str) -> docker.DockerClient:
    return docker.DockerClient(
        base_url=f"unix://{lab.directory / node / 'docker.sock'}", timeout=60
    )


class Gateway:
    """HTTPS requests to one facility through one node's gateway, made inside that node."""

    def __init__(self, lab, node: str, slug: str, scratch: Path):
        self.lab, self.node, self.slug, self.scratch = lab, node, slug, scratch
        self.token: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        upload: Path | None = None,
        save: Path | None = None,
    ) -> tuple[int, bytes]:
        out = save or self.scratch / "answer"
        host = f"{self.slug}.localhost"
        command = [
            "curl", "-sS", "-k", "--max-time", "120",
            "--resolve", f"{host}:8443:127.0.0.1",
            "-X", method, "-o", str(out), "-w", "%{http_code}",
        ]  # fmt: skip
        if self.token:
            command += ["-H", f"Authorization: Bearer {self.token}"]
        if body is not None:
            command += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        if upload is not None:
            command += ["-F", f"file=@{upload}"]
        command.append(f"https://{host}:8443{path}")
        result = self.lab.run(self.node, *command, timeout=180)
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip()), b"" if save else out.read_bytes()

    def json(self, method: str, path: str, expect: int, body: dict | None = None, **kw) -> dict:
        status, raw = self.call(method, path, body, **kw)
        assert status == expect, raw[:500]
        return json.loads(raw)


def test_create_places_pins_and_serves_through_another_nodes_gateway(lab, created, scratch):
    swarm = _swarm(lab)
    expected = placement.choose_node(swarm.nodes(), swarm.facility_services())
    placed = created("placed-one")
    assert placed["node"] == expected
    far = created("far-one", "--node", "node3")
    assert far["node"] == "node3"
    assert far["url"] == "https://far-one.localhost:8443/"

    pins = {s.slug: s.node for s in swarm.facility_services()}
    assert pins == {"placed-one": expected, "far-one": "node3"}
    for slug, node in pins.items():
        spec = swarm.client.api.inspect_service(f"medcell-{slug}")["Spec"]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [pin_constraint(node)]
        task = swarm.wait_running(f"medcell-{slug}", 60)
        assert task.node == node

    rows = {r["slug"]: r for r in lab.medcell_json("node2", "facility", "list")}
    assert {s: (r["node"], r["status"]) for s, r in rows.items()} == {
        "placed-one": (expected, "running"),
        "far-one": ("node3", "running"),
    }
    assert lab.medcell_json("node1", "facility", "show", "far-one")["node"] == "node3"
    assert lab.medcell_json("node1", "status")["facility_nodes"] == pins
    # Every node holds the map that sends far-one to node3's address.
    for node in NODES:
        held = json.loads((lab.directory / node / "home/gateway/routes-map.json").read_text())
        assert held["facilities"]["far-one"] == {"node": "node3", "address": "10.231.7.3"}

    gateway = Gateway(lab, "node1", "far-one", scratch)
    login = {"username": far["admin_user"], "password": far["admin_password"]}
    gateway.token = gateway.json("POST", "/api/v1/login", 200, login)["token"]
    conversation = gateway.json("POST", "/api/v1/conversations", 201, {"title": "Knee"})
    messages = f"/api/v1/conversations/{conversation['id']}/messages"
    gateway.json("POST", messages, 201, {"body": "Please bring the X-ray on Monday."})
    listed = gateway.json("GET", messages, 200)["messages"]
    assert [m["body"] for m in listed] == ["Please bring the X-ray on Monday."]

    upload = scratch / "scan.pdf"
    head = b"%PDF-1.7\n"  # what may be attached is decided by its first bytes
    upload.write_bytes(head + os.urandom(20 * MiB - len(head)))
    upload.chmod(0o644)
    attachments = f"/api/v1/conversations/{conversation['id']}/attachments"
    sent = gateway.json("POST", attachments, 201, upload=upload)
    assert sent["size"] == 20 * MiB
    back = scratch / "back.bin"
    status, _ = gateway.call("GET", f"/api/v1/attachments/{sent['id']}", save=back)
    assert status == 200
    assert (
        hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(upload.read_bytes()).digest()
    )


def test_delete_leaves_no_byte_of_it_on_any_node(lab, created):
    created("gone-soon", "--node", "node3")
    node3 = _node_client(lab, "node3")
    labels = {"label": ["medcell.facility=gone-soon"]}
    assert node3.volumes.list(filters=labels)
    socket_dir = lab.directory / "node3" / "home" / "run" / "facilities" / "gone-soon"
    assert socket_dir.exists()

    out = lab.medcell_json("node1", "facility", "delete", "gone-soon", "--yes")
    assert (out["deleted"], out["node"]) == (True, "node3")
    assert out["keys_destroyed"] > 0 and out["receipt"] is not None

    assert _swarm(lab).service("medcell-gone-soon") is None
    for node in NODES:
        client = _node_client(lab, node)
        assert client.containers.list(all=True, filters=labels) == [], node
        assert client.volumes.list(filters=labels) == [], node
        home = lab.directory / node / "home"
        assert not (home / "run" / "facilities" / "gone-soon").exists(), node
        assert not (home / "facilities" / "gone-soon.json").exists(), node
        held = json.loads((home / "gateway" / "routes-map.json").read_text())
        assert "gone-soon" not in held["facilities"], node
        routes = json.loads((home / "gateway" / "routes.json").read_text())
        assert "gone-soon" not in routes["facilities"], node
    assert lab.medcell_json("node1", "facility", "list") == []

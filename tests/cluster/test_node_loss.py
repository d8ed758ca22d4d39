"""Losing a node: node3's link is cut while it holds facilities, one awake and one asleep.

Within 30 s both answer 503 with Retry-After through the other nodes' gateways, a facility on
node2 keeps answering, and no copy of node3's facilities starts anywhere else (no task, no
volume). A conversation of the sleeping one expires while node3 is cut off (its supervisor cannot
wake it: no manager answers there); when the link is back, the first successful answer through
node1's gateway no longer lists it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import docker
import pytest

from devsupport.waiting import eventually
from provisioner.host.swarm import Swarm
from tests.cluster.conftest import NODES

pytestmark = pytest.mark.lab

LOST, AWAKE, KEPT = "lost-one", "awake-one", "kept-one"
RETENTION = "3m"  # its conversation expires while node3 is cut off
IDLE = "10s"  # so it is asleep well before that
LOSS_ANSWERED = 30  # the promise: every other gateway answers for a lost node within this


def engine(lab, node: str) -> docker.DockerClient:
    return docker.DockerClient(
        base_url=f"unix://{lab.directory / node / 'docker.sock'}", timeout=60
    )


def through(lab, node: str, slug: str, path: str, scratch: Path, token: str = "", **json_body):
    """(status, headers, body) of a request to `slug` through `node`'s gateway, made in `node`."""
    host = f"{slug}.localhost"
    body, headers = scratch / f"{node}-body", scratch / f"{node}-headers"
    command = [
        "curl", "-sS", "-k", "--max-time", "40", "--resolve", f"{host}:8443:127.0.0.1",
        "-o", str(body), "-D", str(headers), "-w", "%{http_code}",
    ]  # fmt: skip
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if json_body:
        command += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(json_body)]
    result = lab.run(node, *command, f"https://{host}:8443{path}", timeout=60)
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        return 0, {}, b""  # no answer at all
    lines = headers.read_text(errors="replace").splitlines()
    fields = dict(line.split(": ", 1) for line in lines if ": " in line)
    return int(result.stdout.strip()), {k.lower(): v for k, v in fields.items()}, body.read_bytes()


@pytest.fixture
def facilities(lab):
    made: list[str] = []

    def create(slug: str, *args: str) -> dict:
        made.append(slug)
        return lab.medcell_json("node1", "facility", "create", slug, *args)

    yield create
    lab.script("heal", "node3")
    lab.settled()
    for slug in made:
        deleted = lab.run("node1", "medcell", "facility", "delete", slug, "--yes", timeout=300)
        assert deleted.returncode == 0 or "no facility" in deleted.stderr, deleted.stderr[-800:]


def test_a_cut_node_is_503_elsewhere_runs_nowhere_else_and_deletes_before_it_answers(
    lab, facilities, scratch
):
    swarm = Swarm(engine(lab, "node1"))
    lost = facilities(LOST, "--node", "node3", "--retention", RETENTION, "--idle", IDLE)
    facilities(AWAKE, "--node", "node3", "--idle", "never")
    facilities(KEPT, "--node", "node2")

    login = {"username": lost["admin_user"], "password": lost["admin_password"]}
    status, _, raw = through(lab, "node1", LOST, "/api/v1/login", scratch, **login)
    assert status == 200, raw[:300]
    token = json.loads(raw)["token"]
    status, _, raw = through(lab, "node1", LOST, "/api/v1/conversations", scratch, token, title="x")
    assert status == 201, raw[:300]
    conversation = json.loads(raw)["id"]
    status, _, raw = through(lab, "node1", LOST, "/api/v1/conversations", scratch, token)
    listed = {c["id"]: c for c in json.loads(raw)["conversations"]}
    expires = datetime.fromisoformat(listed[conversation]["expires_at"].replace("Z", "+00:00"))
    expires = expires.timestamp()

    # node3's supervisor puts it to sleep after its idle time: nothing there deletes on its own.
    replicas = eventually(lambda: swarm.service(f"medcell-{LOST}").replicas, lambda r: r == 0, 150)
    assert replicas == 0
    assert time.time() < expires - 20, "asleep too late for the test: its deadline came first"

    assert lab.script("cut", "node3").returncode == 0
    cut = time.monotonic()
    for slug in (LOST, AWAKE):
        for node in ("node1", "node2"):
            seen = eventually(
                lambda node=node, slug=slug: through(lab, node, slug, "/healthz", scratch),
                lambda answer: answer[0] == 503,
                timeout=max(1.0, LOSS_ANSWERED - (time.monotonic() - cut)),
            )
            assert seen[0] == 503, (slug, node, seen[0])
            assert seen[1].get("retry-after") == "5"
    assert through(lab, "node1", KEPT, "/healthz", scratch)[0] == 200
    assert through(lab, "node2", KEPT, "/healthz", scratch)[0] == 200

    # No second copy: node3's facilities have no task on any other node, no volume there either.
    for slug in (LOST, AWAKE):
        tasks = swarm.client.api.tasks(filters={"service": f"medcell-{slug}"})
        # A task Swarm made to replace the lost one waits unassigned (Pending), on no node.
        placed = [t["NodeID"] for t in tasks if t.get("NodeID")]
        nodes = {swarm.client.api.inspect_node(n)["Description"]["Hostname"] for n in placed}
        assert nodes <= {"node3"}, (slug, nodes)
        for node in ("node1", "node2"):
            volumes = engine(lab, node).volumes.list(filters={"label": f"medcell.facility={slug}"})
            assert volumes == [], (slug, node)

    # Its conversation expires while node3 is cut off; then the link comes back.
    assert eventually(time.time, lambda now: now > expires + 5, timeout=240) > expires + 5
    assert lab.script("heal", "node3").returncode == 0

    def first_success():
        return through(lab, "node1", LOST, "/api/v1/conversations", scratch, token)

    status, _, raw = eventually(first_success, lambda answer: answer[0] not in (0, 503), 300)
    assert status == 200, raw[:300]
    assert conversation not in {c["id"] for c in json.loads(raw)["conversations"]}
    # The awake one is back too, one copy of it.
    awake = eventually(
        lambda: through(lab, "node1", AWAKE, "/healthz", scratch), lambda a: a[0] == 200, 120
    )
    assert awake[0] == 200

    def copies() -> dict[str, int]:
        label = {"label": [f"medcell.facility={AWAKE}", "medcell.role=facility"]}
        return {
            node: len(engine(lab, node).containers.list(filters=label, ignore_removed=True))
            for node in NODES
        }

    # The old container on node3 drains while the new task waits for the volume's lock.
    assert eventually(copies, lambda seen: seen == {"node1": 0, "node2": 0, "node3": 1}, 60) == {
        "node1": 0,
        "node2": 0,
        "node3": 1,
    }

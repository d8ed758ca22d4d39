"""The cluster tier: one lab (deploy/lab.sh) per test session, named apart from an operator's."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devsupport import eventually
from provisioner.host.config import Config

ROOT = Path(__file__).resolve().parents[2]
LAB_SCRIPT = ROOT / "deploy" / "lab.sh"
NODES = ("node1", "node2", "node3")


def lab_config(home: Path) -> Config:
    """The settings of a node whose home this test reads at `home`, with the images this test run
    builds and loads into the nodes (MEDCELL_IMAGE_TAG)."""
    tag = os.environ.get("MEDCELL_IMAGE_TAG") or "latest"
    return Config.from_env({"MEDCELL_HOME": str(home), "MEDCELL_IMAGE_TAG": tag})


@dataclass
class Lab:
    """A running lab: run commands as its nodes, cut and heal their links, take it down."""

    name: str
    directory: Path
    up_seconds: float = 0.0
    is_up: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(LAB_SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.script("up", timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        self.up_seconds = time.monotonic() - started
        self.is_up = True
        return result

    def down(self) -> subprocess.CompletedProcess:
        result = self.script("down")
        self.is_up = False
        return result

    def run(self, node: str, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command as `node` (bash deploy/lab.sh exec NODE -- COMMAND)."""
        return self.script("exec", node, "--", *command, timeout=timeout)

    def medcell_json(self, node: str, *args: str):
        result = self.run(node, "medcell", *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def node_state(self, node: str) -> str:
        """The node's state as `node list` on node1 says it, or what kept it from answering."""
        result = self.run("node1", "medcell", "node", "list", "--json")
        if result.returncode != 0:
            return result.stderr.strip()[-200:]
        return {row["node"]: row["state"] for row in json.loads(result.stdout)}[node]

    def settled(self, answers: int = 15, timeout: float = 300) -> None:
        """Until node1's managers answered `answers` times in a row (a leader that stays), each
        time with every node's supervisor running: a healed node's return may unseat the leader
        moments after it is ready again (seen on this lab), and the next test needs a cluster
        that answers."""
        streak = [0]

        def probe() -> int:
            result = self.run("node1", "medcell", "status", "--json")
            tasks = (
                json.loads(result.stdout).get("supervisor_nodes", {})
                if result.returncode == 0
                else {}
            )
            answered = sorted(tasks) == list(NODES) and set(tasks.values()) == {"running"}
            streak[0] = streak[0] + 1 if answered else 0
            return streak[0]

        assert eventually(probe, lambda n: n >= answers, timeout) >= answers

    def nodes(self, on: str = "node1") -> dict[str, dict]:
        return {row["node"]: row for row in self.medcell_json(on, "node", "list")}

    @property
    def node_view(self) -> Path:
        """Where every node sees its own folder (MEDCELL_HOME is `node_view / "home"`)."""
        return self.directory / "node"

    def outside(self, node: str, path: str) -> Path:
        """A path a command printed on `node`, as this test sees it."""
        return self.directory / node / Path(path).relative_to(self.node_view)


@pytest.fixture(scope="session")
def lab_session():
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces and engines of their own)")
    name = "test"
    env = {**os.environ, "MEDCELL_LAB": name}
    # Image builds are serialised by whoever runs the suite; the lab must not wait on that lock.
    env.pop("MEDCELL_IMAGE_LOCK", None)
    env.pop("MEDCELL_LAB_DIR", None)
    lab = Lab(name=name, directory=Path(f"/var/lib/medcell-{name}"), env=env)
    lab.down()  # whatever an interrupted earlier run left
    lab.up()
    print(f"\nlab up in {lab.up_seconds:.1f} s")
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab(lab_session) -> Lab:
    """The session's lab, up (again, if a test took it down)."""
    if not lab_session.is_up:
        lab_session.up()
    return lab_session


@pytest.fixture
def scratch(tmp_path) -> Path:
    tmp_path.chmod(0o755)  # the lab's nodes see this machine's /tmp; root runs both
    return tmp_path


@pytest.fixture
def created(lab):
    """Facilities a test creates from node1, deleted again whatever happens."""
    made: list[str] = []

    def create(slug: str, *args: str) -> dict:
        made.append(slug)
        result = lab.run("node1", "medcell", "facility", "create", slug, *args, "--json")
        assert result.returncode == 0, result.stderr
        # Every node took the routes map.
        assert "did not take the routes map" not in result.stderr, result.stderr
        return json.loads(result.stdout)

    yield create
    # Whatever a test left must go, or the next tests find it: a delete refused for a moment (a
    # leader election, a lock) is tried again, and one that keeps failing says why.
    for slug in made:
        for _ in range(3):
            gone = lab.run("node1", "medcell", "facility", "delete", slug, "--yes", timeout=300)
            if gone.returncode == 0 or "no facility" in gone.stderr:
                break
            lab.settled(answers=3)
        assert gone.returncode == 0 or "no facility" in gone.stderr, gone.stderr[-800:]

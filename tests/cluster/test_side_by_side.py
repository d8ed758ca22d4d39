"""Commands side by side on the lab: two managers racing on one facility take turns through the
cluster-wide lock (a Swarm config object), and leave no lock behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

pytestmark = pytest.mark.lab


def _locks_left(lab, slug: str = "race") -> list[str]:
    """The locks of this test's facility still in the cluster (other tests' are theirs)."""
    client = docker.DockerClient(
        base_url=f"unix://{lab.directory / 'node1' / 'docker.sock'}", timeout=60
    )
    try:
        return [c.name for c in client.configs.list() if c.name.endswith(f"-lock-{slug}")]
    finally:
        client.close()


def test_two_managers_creating_one_slug_take_turns(lab):
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda node: lab.run(
                    node, "medcell", "facility", "create", "race", "--node", "node3", timeout=300
                ),
                ("node1", "node2"),
            )
        )
    try:
        won = [r for r in runs if r.returncode == 0]
        lost = [r for r in runs if r.returncode != 0]
        assert len(won) == 1 and len(lost) == 1, [r.stderr[-800:] for r in runs]
        # The loser waited for the winner's lock (named with its host), then found it made.
        assert "facility race is held by medcell facility create on node" in lost[0].stderr
        assert lost[0].stderr.strip().splitlines()[-1] == "Error: facility race already exists"
        assert _locks_left(lab) == []
    finally:
        lab.run("node1", "medcell", "facility", "delete", "race", "--yes", timeout=300)
    assert _locks_left(lab) == []

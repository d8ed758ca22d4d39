"""The lab: three hosts on one machine forming a cluster, links that can be cut, and a clean end.

The last test takes the lab down; keep it last in this file.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devsupport.waiting import eventually
from tests.cluster.conftest import NODES, ROOT, lab_config

pytestmark = pytest.mark.lab

FIELDS = {"node", "address", "state", "availability", "facilities", "awake", "memory"}


def test_three_nodes_are_ready_on_every_manager(lab):
    for on in NODES:
        nodes = lab.nodes(on=on)
        assert sorted(nodes) == list(NODES)
        for name, row in nodes.items():
            assert set(row) == FIELDS
            assert row["state"] == "ready" and row["availability"] == "active"
            assert row["address"] == f"10.231.7.{name[-1]}"
            assert (row["facilities"], row["awake"]) == (0, 0)
            assert row["memory"] > 0


def test_a_second_up_says_the_lab_is_up(lab):
    result = lab.script("up")
    assert result.returncode == 0
    assert "already up" in result.stderr
    assert result.stdout.split() == [
        "node1",
        "10.231.7.1",
        "node2",
        "10.231.7.2",
        "node3",
        "10.231.7.3",
    ]


def test_each_node_is_a_host_of_its_own(lab):
    seen = set()
    for node in NODES:
        result = lab.run(
            node, "sh", "-c", 'hostname; echo "$MEDCELL_HOME"; docker info --format "{{.ID}}"'
        )
        assert result.returncode == 0, result.stderr
        hostname, home, engine_id = result.stdout.split()
        assert hostname == node
        # One path on every node (global services bind-mount host paths), each its own folder.
        assert home == str(lab.node_view / "home")
        seen.add(engine_id)
    assert len(seen) == 3
    # The nodes' addresses exist only inside the lab: this namespace has none of them.
    outside = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.231.7." not in outside


def test_every_node_gives_containers_no_network_and_no_new_privileges(lab):
    image = lab_config(lab.node_view).facility_image
    for node in NODES:
        result = lab.run(
            node, "docker", "run", "--rm", "--entrypoint", "/bin/sh", image,
            "-c", "grep NoNewPrivs /proc/self/status; ls /sys/class/net",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["NoNewPrivs:", "1", "lo"]


def test_cluster_ca_stays_owner_only_on_the_first_manager(lab):
    home1 = lab.directory / "node1" / "home" / "cluster"
    home2 = lab.directory / "node2" / "home" / "cluster"
    assert (home1 / "ca.key").stat().st_mode & 0o777 == 0o600
    assert home1.stat().st_mode & 0o777 == 0o700
    assert not (home2 / "ca.key").exists()
    for name in ("node.key", "node.crt", "ca.crt"):
        assert (home2 / name).stat().st_mode & 0o777 == 0o600
    # The node's certificate is the cluster CA's, and serves both ends of mutual TLS.
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(home2 / "ca.crt"), "-purpose", "sslclient",
         str(home2 / "node.crt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    secrets = lab.run("node1", "docker", "secret", "ls", "--quiet")
    assert secrets.returncode == 0 and secrets.stdout.strip() == ""


def test_join_is_refused_on_an_engine_without_the_facility_settings(lab, tmp_path):
    """The machine's own engine has a default bridge and no no-new-privileges.

    The lab's addresses do not exist out here: the manager named is a loopback port, so a join
    that got past the check could reach nothing beyond this machine.
    """
    join = lab.medcell_json("node1", "cluster", "join-command")
    bundle = tmp_path / "bundle.json"
    shutil.move(lab.outside("node1", join["bundle"]), bundle)
    env = {**os.environ, "MEDCELL_HOME": str(tmp_path / "home")}
    env.pop("DOCKER_HOST", None)
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "medcell"), "cluster", "join", "--token", join["token"],
         "--bundle", str(bundle), "127.0.0.1:9"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert re.fullmatch(r"Error: [^\n]+\n", result.stderr), result.stderr
    assert "lacks what facility nodes need" in result.stderr
    assert 'set "bridge": "none"' in result.stderr
    assert "daemon.json" in result.stderr
    assert bundle.exists()  # nothing consumed: the operator fixes the engine and runs it again
    assert not (tmp_path / "home" / "cluster").exists()
    assert sorted(lab.nodes()) == list(NODES)


def test_a_host_in_the_cluster_cannot_init_or_join_again(lab):
    join = lab.medcell_json("node1", "cluster", "join-command")
    # Copied to node2 as an operator would.
    copied = lab.directory / "node2" / "home" / "bundle.json"
    shutil.move(lab.outside("node1", join["bundle"]), copied)
    bundle = str(lab.node_view / "home" / "bundle.json")
    for args in (
        ["cluster", "init"],
        ["cluster", "join", "--token", join["token"], "--bundle", bundle, join["manager"]],
    ):
        result = lab.run("node2", "medcell", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: this host's Docker Engine is already in a cluster")
    assert copied.exists()
    copied.unlink()
    assert sorted(lab.nodes()) == list(NODES)


def test_a_cut_node_is_down_and_ready_again_once_healed(lab):
    assert lab.script("cut", "node3").returncode == 0
    try:
        seen = eventually(lambda: lab.nodes()["node3"]["state"], lambda s: s == "down", 30)
        assert seen == "down"
        assert lab.nodes(on="node2")["node1"]["state"] == "ready"
    finally:
        assert lab.script("heal", "node3").returncode == 0
    seen = eventually(lambda: lab.nodes()["node3"]["state"], lambda s: s == "ready", 60)
    assert seen == "ready"


def test_cut_and_exec_refuse_an_unknown_node(lab):
    for args in (["cut", "node4"], ["heal", "../x"], ["exec", "node9", "--", "true"]):
        result = lab.script(*args)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: no node")


def _lab_processes(directory: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


def test_down_leaves_nothing_and_is_safe_twice(lab):
    directory = lab.directory
    assert _lab_processes(directory)
    first, second = lab.down(), lab.down()
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"medcell-{lab.name}-" not in namespaces
    assert _lab_processes(directory) == []
    assert not directory.exists()
    assert str(directory) not in Path("/proc/mounts").read_text()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/medcell-{lab.name}-*"))
    status = lab.script("status")
    assert status.returncode == 1 and status.stdout == ""

"""Cluster mode's stack: a gateway and a supervisor task on every node, hardened, each gateway
answering on its node's own address, and the cluster CA key in none of them."""

import json
from pathlib import Path

import pytest

from devsupport.waiting import eventually
from tests.cluster.conftest import NODES

pytestmark = pytest.mark.lab

SERVICES = ("medcell-gateway", "medcell-supervisor")
CLUSTER_FILES = ["ca.crt", "node.crt", "node.key"]


def address(node: str) -> str:
    return f"10.231.7.{node[-1]}"


def task_containers(lab, node: str, service: str) -> list[dict]:
    """The containers of `service`'s tasks on `node`'s own engine, inspected."""
    listed = lab.run(
        node, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
    )
    assert listed.returncode == 0, listed.stderr
    ids = listed.stdout.split()
    if not ids:
        return []
    inspected = lab.run(node, "docker", "inspect", *ids)
    assert inspected.returncode == 0, inspected.stderr
    return json.loads(inspected.stdout)


def stack_runs_everywhere(lab) -> bool:
    status = lab.medcell_json("node1", "status")
    everywhere = {node: "running" for node in NODES}
    return status["gateway_nodes"] == everywhere and status["supervisor_nodes"] == everywhere


@pytest.fixture
def stack(lab):
    """The lab with its stack running on every node (gateways pass their first health check
    30 s after they start)."""
    assert eventually(lambda: stack_runs_everywhere(lab), bool, 90)
    return lab


def test_one_gateway_and_one_supervisor_task_on_every_node(stack):
    status = stack.medcell_json("node2", "status")
    assert (status["gateway"], status["supervisor"]) == ("running", "running")
    for node in NODES:
        for service in SERVICES:
            containers = task_containers(stack, node, service)
            assert len(containers) == 1, (node, service)
            assert containers[0]["State"]["Status"] == "running"
            assert containers[0]["Config"]["Labels"]["com.docker.swarm.node.id"]
    text = stack.run("node1", "medcell", "status").stdout
    assert "gateway:    running (node1 running, node2 running, node3 running)" in text


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _pids_max(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return Path(f"/sys/fs/cgroup/pids{path}/pids.max").read_text().strip()
    raise AssertionError(f"no pids cgroup for {pid}")


def test_every_task_on_every_node_runs_hardened(stack):
    """Checked on the running processes: Swarm's inspect shows neither no-new-privileges nor a
    missing network, and the engines' own settings are half of the hardening."""
    for node in NODES:
        for service in SERVICES:
            (container,) = task_containers(stack, node, service)
            pid = container["State"]["Pid"]
            status = _proc_status(pid)
            assert status["NoNewPrivs"].strip() == "1", (node, service)
            for capabilities in ("CapEff", "CapPrm", "CapBnd"):
                assert int(status[capabilities], 16) == 0, (node, service, capabilities)
            assert _pids_max(pid) == "256"
            assert container["HostConfig"]["ReadonlyRootfs"] is True
            root = next(
                line.split()
                for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/"
            )
            assert "ro" in root[5].split(","), (node, service, root)
            written = stack.run(node, "docker", "exec", container["Id"], "sh", "-c", "touch /probe")
            assert written.returncode != 0 and "Read-only file system" in written.stderr
            assert container["Config"]["User"] != ""
            assert container["HostConfig"]["Memory"] > 0


def test_each_nodes_gateway_answers_on_its_own_address_from_another_node(stack):
    for node in NODES:
        other = next(n for n in NODES if n != node)
        result = stack.run(
            other, "curl", "-sk", "--max-time", "5", f"https://{address(node)}:8443/healthz"
        )
        assert result.returncode == 0, (node, result.stderr)
        assert json.loads(result.stdout) == {"status": "ok"}


def test_peer_and_node_api_ports_are_published_on_each_node(stack):
    for node in NODES:
        (gateway,) = task_containers(stack, node, "medcell-gateway")
        (supervisor,) = task_containers(stack, node, "medcell-supervisor")
        published = {
            port: [b["HostPort"] for b in bindings]
            for port, bindings in gateway["HostConfig"]["PortBindings"].items()
        }
        assert published == {"8443/tcp": ["8443"], "8080/tcp": ["8080"], "8444/tcp": ["8444"]}
        # The supervisor is on its node's own network: it binds the node API's port itself.
        assert supervisor["HostConfig"]["NetworkMode"] == "host"
        assert not supervisor["HostConfig"]["PortBindings"]
        other = next(n for n in NODES if n != node)
        handshake = stack.run(
            other,
            "curl",
            "-sk",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"https://{address(node)}:9445/v1/node",
        )
        # Without a cluster certificate the node API ends the handshake: curl says 35, 55 or 56.
        assert handshake.returncode in (35, 55, 56), (node, handshake.returncode, handshake.stderr)
        # The supervisor keeps its own node's engine.
        sockets = [m for m in supervisor["Mounts"] if m["Destination"] == "/var/run/docker.sock"]
        assert [m["Source"] for m in sockets] == [str(stack.node_view / "docker.sock")]


def test_each_nodes_metrics_answer_on_its_own_loopback_only(stack):
    """MEDCELL_METRICS_BIND's default, 127.0.0.1:9464, on every node: a scrape there names the
    node; the same port on the node's own address answers nobody."""
    for node in NODES:
        scrape = stack.run(node, "curl", "-s", "--max-time", "5", "http://127.0.0.1:9464/metrics")
        assert scrape.returncode == 0, (node, scrape.stderr)
        states = [
            line for line in scrape.stdout.splitlines() if line.startswith("medcell_facilities{")
        ]
        assert states and all(f'node="{node}"' in line for line in states), (node, states)
        other = next(n for n in NODES if n != node)
        refused = stack.run(
            other, "curl", "-s", "--max-time", "5", f"http://{address(node)}:9464/metrics"
        )
        assert refused.returncode == 7, (node, refused.returncode, refused.stdout[:200])


def test_the_cluster_ca_key_is_in_no_task(stack):
    assert (stack.directory / "node1" / "home" / "cluster" / "ca.key").exists()
    tls_dirs = {
        "medcell-gateway": "/etc/medcell-gateway/cluster",
        "medcell-supervisor": "/run/medcell/cluster",
    }
    for node in NODES:
        for service in SERVICES:
            (container,) = task_containers(stack, node, service)
            sources = [m["Source"] for m in container["Mounts"]]
            assert not any(s.endswith("ca.key") or s.endswith("/cluster") for s in sources)
            found = stack.run(
                node, "docker", "exec", container["Id"], "sh", "-c",
                "find / -name ca.key -not -path '/proc/*' -not -path '/sys/*'; "
                f"ls {tls_dirs[service]}",
            )  # fmt: skip
            assert found.returncode == 0, found.stderr
            # Only the node's certificate, its key and the CA's certificate.
            assert found.stdout.split() == CLUSTER_FILES, (node, service)
        # The supervisor's view of MEDCELL_HOME has nothing of the node's cluster folder.
        (supervisor,) = task_containers(stack, node, "medcell-supervisor")
        listed = stack.run(node, "docker", "exec", supervisor["Id"], "ls", "-A", "/medcell/cluster")
        assert (listed.returncode, listed.stdout) == (0, ""), (node, listed.stderr)


def test_down_takes_every_gateway_away_and_up_brings_them_back(stack):
    result = stack.run("node1", "medcell", "down", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"gateway": "medcell-gateway", "removed": True}
    for node in NODES:
        assert (
            eventually(
                lambda n=node: task_containers(stack, n, "medcell-gateway"), lambda c: c == [], 30
            )
            == []
        )
        assert len(task_containers(stack, node, "medcell-supervisor")) == 1
    status = stack.medcell_json("node3", "status")
    assert (status["gateway"], status["supervisor"]) == ("stopped", "running")
    result = stack.run("node2", "medcell", "up", "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "running"
    for node in NODES:
        assert len(task_containers(stack, node, "medcell-gateway")) == 1

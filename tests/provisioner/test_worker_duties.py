"""What a worker's supervisor asks of a manager's node API beyond scaling: the ready nodes (where
its scheduled backups go) and a facility's cluster lock, for its backups and its stale copies
(provisioner/supervisor/scaling.py, host/remote_locks.py), over real mutual TLS on loopback.

This node is node3, a worker; node1 is a manager whose node API serves it. The fake cluster is
node1's engine (services, tasks, the cluster's locks) and node3's (volumes, one-off containers).
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

from devsupport import eventually
from provisioner.host import cluster_ca
from provisioner.host.cluster_locks import HOLDER_LABEL, NODE_LABEL, SwarmLocks
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import Busy, DockerError, NodeError
from provisioner.host.manager_swarm import ManagerSwarm
from provisioner.host.node_api import NodeClient, _Connection
from provisioner.host.remote_locks import RemoteLocks
from provisioner.host.swarm import CERT_LABEL, Swarm, SwarmConfigs
from provisioner.supervisor.cluster import NodeEngine
from provisioner.supervisor.node_api import NodeServer, NodeService
from tests.provisioner.test_cluster_facilities import ClusterEngine
from tests.provisioner.test_stale_copies import NODE, _copy_here, _left, _service


@pytest.fixture
def cluster():
    return ClusterEngine()


@pytest.fixture
def backend(cluster, config):
    cluster.images_present.add(config.facility_image)  # the one-off wipe and shred run from it
    return DockerBackend(cluster)


@pytest.fixture
def tls(tmp_path, cluster) -> dict:
    """Every node's certificate from one cluster CA; node3's Swarm entry labelled with its
    certificate's common name (as `join` does); one more certificate no node carries."""
    home = tmp_path / "ca"
    cluster_ca.create_ca(home)
    folders = {}
    for node, common_name in (("node1", "node1"), (NODE, "medcell-node-3"), ("nobody", "x")):
        folder = home / node
        folder.mkdir()
        material = cluster_ca.issue(home, common_name)
        for name, key in (("ca.crt", "ca_cert"), ("node.crt", "cert"), ("node.key", "key")):
            (folder / name).write_text(material[key])
        folders[node] = folder
    for node, common_name in (("node1", "node1"), (NODE, "medcell-node-3")):
        cluster.swarm.nodes_by_name[node].attrs["Spec"]["Labels"][CERT_LABEL] = common_name
        cluster.swarm.nodes_by_name[node].attrs["Spec"]["Role"] = (
            "manager" if node == "node1" else "worker"
        )
    return folders


@pytest.fixture
def node1(config, cluster, tls):
    """node1's node API, served over mutual TLS on 127.0.0.2."""
    server = NodeServer(("127.0.0.2", 0), tls["node1"], NodeService(config, DockerBackend(cluster)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def managers(config, tls, node1) -> ManagerSwarm:
    """node3's way to the managers: node1, after a manager that is down (nothing on 127.0.0.9)."""
    return ManagerSwarm(
        config.prefix,
        lambda: ("127.0.0.3", ["127.0.0.9", "127.0.0.2"]),
        tls[NODE],
        port=node1.port,
    )


def client(node1: NodeServer, tls: dict, node: str = NODE) -> NodeClient:
    return NodeClient(f"127.0.0.2:{node1.port}", tls[node], timeout=10)


def raw(node1: NodeServer, tls: dict, method: str, path: str, body: object = None):
    """One request as it goes over the wire: the status and the decoded JSON answer."""
    connection = _Connection("127.0.0.2", node1.port, client(node1, tls).context, 10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class WorkerEngine:
    """node3's own engine as a Swarm worker: it answers no Swarm call."""

    def info(self) -> dict:
        swarm = {"LocalNodeState": "active", "ControlAvailable": False, "NodeID": "n3"}
        return {"Name": NODE, "Swarm": swarm}


# The ready nodes


def test_a_worker_learns_the_ready_nodes_and_their_addresses_nothing_else(
    cluster, tls, node1, managers
):
    cluster.set_node("node2", state="down")

    answer = client(node1, tls).cluster_nodes()

    assert answer == {
        "node": NODE,
        "nodes": [
            {"name": "node1", "address": "10.0.0.1", "manager": True},
            {"name": NODE, "address": "10.0.0.3", "manager": False},
        ],
    }
    assert [(n.name, n.manager) for n in managers.nodes()] == [("node1", True), (NODE, False)]


def test_a_certificate_no_node_carries_learns_no_nodes(tls, node1):
    with pytest.raises(NodeError) as refused:
        client(node1, tls, "nobody").cluster_nodes()
    assert (refused.value.code, refused.value.status) == ("forbidden", 403)


# The facility's cluster lock


def test_a_worker_holds_its_own_facilitys_lock_through_a_manager(config, cluster, managers):
    _service(config, cluster, "praxis", NODE)
    command = SwarmLocks(config, SwarmConfigs(cluster), host="node1")

    with RemoteLocks(managers).hold("praxis") as taken:
        assert (taken["node"], taken["stale"]) == (NODE, False)
        with pytest.raises(Busy, match=f"the supervisor of node {NODE}"):
            with command.hold("praxis"):
                pass
        (lock,) = cluster.configs.by_name.values()
        assert lock["Spec"]["Labels"][HOLDER_LABEL] == f"the supervisor of node {NODE}"
    assert cluster.configs.by_name == {}  # released
    with command.hold("praxis"):
        with pytest.raises(Busy, match="medcell"):  # the command's holder, named
            with RemoteLocks(managers).hold("praxis"):
                pass


def test_a_worker_may_not_lock_another_nodes_facility(config, cluster, tls, node1, managers):
    # Pinned to node1 and asleep there: no copy on node3 can be stale, nothing to lock for it.
    _service(config, cluster, "elsewhere", "node1", replicas=0)

    status, answer = raw(node1, tls, "POST", "/v1/locks/elsewhere", {})

    assert status == 403
    assert answer["error"]["code"] == "forbidden"
    assert "not pinned to node node3" in answer["error"]["message"]
    with pytest.raises(DockerError, match="not pinned"):
        with RemoteLocks(managers).hold("elsewhere"):
            pass
    assert cluster.configs.by_name == {}


def test_a_worker_may_neither_renew_nor_release_a_lock_it_does_not_hold(
    config, cluster, tls, node1
):
    _service(config, cluster, "praxis", NODE)
    mine = SwarmLocks(config, SwarmConfigs(cluster)).take("praxis", "node1")  # node1's, say

    status, answer = raw(node1, tls, "PUT", f"/v1/locks/praxis/{mine}", {})
    assert (status, answer["error"]["code"]) == (409, "lock_lost")
    assert client(node1, tls).release_lock("praxis", mine) is False
    assert [c["ID"] for c in cluster.configs.by_name.values()] == [mine]


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("POST", "/v1/locks/praxis", {"holder": "me"}, 400, "invalid"),
        ("POST", "/v1/locks/praxis", [], 400, "invalid"),
        ("POST", "/v1/locks/Not_A_Slug", {}, 400, "invalid"),
        ("PUT", "/v1/locks/praxis/NOT-AN-ID", {}, 400, "invalid"),
        ("PUT", "/v1/locks/praxis/cfg1", {"expires": 1}, 400, "invalid"),
        ("GET", "/v1/locks/praxis", None, 405, "method_not_allowed"),
        ("POST", "/v1/cluster/nodes", {}, 405, "method_not_allowed"),
        ("POST", "/v1/locks/gone", {}, 404, "not_found"),
    ],
)
def test_bad_requests_for_locks_and_nodes_get_the_contracts_error_shape(
    config, cluster, tls, node1, method, path, body, status, code
):
    _service(config, cluster, "praxis", NODE)

    answered, answer = raw(node1, tls, method, path, body)

    assert answered == status
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
    assert answer["error"]["code"] == code
    assert cluster.configs.by_name == {}


# Stale copies on a worker


def test_a_worker_destroys_its_stale_copy_under_the_lock_a_manager_holds_for_it(
    config, cluster, backend, managers, caplog
):
    _copy_here(config, backend, "evacuated")
    _service(config, cluster, "evacuated", "node1")  # restored on node1, running there
    _copy_here(config, backend, "asleep")
    _service(config, cluster, "asleep", "node1", replicas=0)  # not running there yet
    _copy_here(config, backend, "moving")
    _service(config, cluster, "moving", "node1")
    node3 = NodeEngine(config, backend, Swarm(WorkerEngine()), remote=managers)
    move = SwarmLocks(config, SwarmConfigs(cluster), host="node1")

    with move.hold("moving"), caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        found = node3.discover()

    assert (found.reachable, found.node, found.pinned) == (True, NODE, {})
    assert _left(config, cluster, "evacuated") == []
    assert cluster.shredded == [config.facility("evacuated").keys_volume]
    assert len(_left(config, cluster, "asleep")) == 5
    assert len(_left(config, cluster, "moving")) == 5  # a move holds it: the next discovery
    events = [getattr(r, "fields", {}).get("event") for r in caplog.records]
    assert "stale_copy_failed" not in events
    assert cluster.configs.by_name == {}  # every lock taken for node3 is given back

    node3.discover()
    assert _left(config, cluster, "moving") == []
    assert len(_left(config, cluster, "asleep")) == 5


def test_a_worker_renews_the_lock_it_holds_while_it_works(config, cluster, managers):
    _service(config, cluster, "praxis", NODE)
    name = f"{config.prefix}-lock-praxis"

    with RemoteLocks(managers, lease=0.2).hold("praxis"):  # renewed every 0.05 s
        renewed = eventually(
            lambda: cluster.configs.by_name[name]["Version"]["Index"], lambda v: v >= 3, 10
        )
        assert renewed >= 3
        assert cluster.configs.by_name[name]["Spec"]["Labels"][NODE_LABEL] == NODE
    assert cluster.configs.by_name == {}

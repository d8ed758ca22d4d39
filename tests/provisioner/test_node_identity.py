"""A node's identity in the cluster: the common name of its certificate, labelled on its Swarm
entry at `cluster init` and `join` (what a manager's node API checks a worker's request by)."""

from __future__ import annotations

from provisioner.host import cluster_ca
from provisioner.host.swarm import CERT_LABEL, NODE_LABEL, Swarm
from tests.provisioner.fakeswarm_replicated import FakeSwarm


def test_each_certificate_join_command_issues_names_its_own_node(tmp_path):
    cluster_ca.create_ca(tmp_path)
    first = cluster_ca.issue(tmp_path, "node1")
    joined = cluster_ca.issue(tmp_path, "medcell-node-1765000000000000000")
    assert cluster_ca.common_name(first["cert"]) == "node1"
    assert cluster_ca.common_name(joined["cert"]) == "medcell-node-1765000000000000000"


def test_a_node_is_labelled_with_its_name_and_its_certificates_common_name():
    fake = FakeSwarm()
    node = fake.add_node("node2")
    node.attrs["Spec"]["Labels"] = {"other": "kept"}
    Swarm(fake).label_node(node.id, "node2", "medcell-node-7")
    labels = node.attrs["Spec"]["Labels"]
    assert labels == {"other": "kept", NODE_LABEL: "node2", CERT_LABEL: "medcell-node-7"}
    assert Swarm(fake).nodes()[0].labels[CERT_LABEL] == "medcell-node-7"

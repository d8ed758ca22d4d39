"""The node API against the real engine on this host: a facility made ready, run, asked and
destroyed through it, leaving nothing behind."""

from __future__ import annotations

import threading

import pytest

from provisioner.host import cluster_ca, facility_commands, specs
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.node_api import NodeClient
from provisioner.supervisor.node_api import NodeServer, NodeService

pytestmark = pytest.mark.docker

META = {"name": "Praxis Nord", "retention": "7d"}


@pytest.fixture
def node(installation, docker_client):
    """This host as a cluster node: its certificates, and its node API on a loopback port."""
    config = Config.from_env(installation)
    cluster_ca.create_ca(config.home)
    tls_dir = cluster_ca.install(config.home, cluster_ca.issue(config.home, "node1"))
    backend = DockerBackend(docker_client)
    server = NodeServer(("127.0.0.1", 0), tls_dir, NodeService(config, backend))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield config, backend, NodeClient(f"127.0.0.1:{server.port}", tls_dir)
    finally:
        server.shutdown()
        server.server_close()


def test_prepare_run_manage_and_destroy_leave_no_volume_and_no_socket_directory(node):
    config, backend, client = node
    facility = config.facility("nord")
    assert client.prepare("nord", META)["created"] == [facility.data_volume, facility.keys_volume]
    assert facility.socket_dir.is_dir()
    # The manager's part: the facility's container, here as on a single host.
    image_id = backend.image_id(config.facility_image)
    backend.create_container(specs.facility_spec(config, facility, "Praxis Nord", "7d", image_id))
    backend.start(facility.container)
    facility_commands.wait_facility(config, backend, "nord", config.health_timeout, print)
    assert client.info()["facilities"] == ["nord"] and client.info()["awake"] == 1

    usage = client.manage("nord", "usage")
    assert {"quota", "conversation_quota", "used_bytes"} <= set(usage)
    assert client.manage("nord", "create-admin", "--username", "chef")["username"] == "chef"

    destroyed = client.destroy("nord")
    assert destroyed["slug"] == "nord" and destroyed["shredded"] >= 1
    assert destroyed["receipt"] is not None
    assert backend.volumes(config.labels(facility="nord")) == []
    assert backend.containers(config.labels(facility="nord")) == []
    assert not facility.socket_dir.exists()
    assert client.info() == {**client.info(), "facilities": [], "awake": 0}

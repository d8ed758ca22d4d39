"""A manager's `facility stop|start|sleep|wake` as a node does it (POST …/lifecycle), over real
mutual TLS on loopback; the node's engine is a recording fake (the lab scales real services)."""

from __future__ import annotations

import threading

import pytest

from medcell_common.interfaces import Desired, RouteState
from provisioner.host import routes, state_file
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import Whereabouts
from provisioner.host.errors import FacilityNotFound, FacilityStopped, InvalidArgument, NodeError
from provisioner.host.node_api import NodeClient
from provisioner.host.state_file import FacilityState
from provisioner.supervisor.node_api import NodeServer, NodeService
from tests.provisioner.test_node_api import _node_material


class RecordingEngine:
    """A node's engine: which facilities run, and what it was asked to do."""

    def __init__(self):
        self.running: dict[str, bool] = {}
        self.asked: list[tuple[str, str]] = []

    def locate(self, slug: str) -> Whereabouts | None:
        if slug not in self.running:
            return None
        up = self.running[slug]
        return Whereabouts(running=up, starting=False, node="node1", container="", state="x")

    def wake(self, slug: str, timeout: float) -> None:
        self.asked.append(("wake", slug))
        self.running[slug] = True

    def sleep(self, slug: str, timeout: int) -> None:
        self.asked.append(("sleep", slug))
        self.running[slug] = False

    def run(self, spec, node=None) -> None:
        raise AssertionError("a node creates nothing here")

    def remove(self, slug: str) -> None:
        raise AssertionError("a node removes nothing here")

    def gateway_running(self) -> bool:
        return False


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return _node_material(tmp_path_factory.mktemp("node1"))


@pytest.fixture
def node_engine() -> RecordingEngine:
    return RecordingEngine()


def _serve(config, fake, tls_dir, engine):
    service = NodeService(config, DockerBackend(fake), engine)
    server = NodeServer(("127.0.0.1", 0), tls_dir, service, read_seconds=1.0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def client(config, fake, tls_dir, node_engine):
    server = _serve(config, fake, tls_dir, node_engine)
    yield NodeClient(f"127.0.0.1:{server.port}", tls_dir, timeout=10)
    server.shutdown()
    server.server_close()


@pytest.fixture
def here(config, fake, node_engine):
    """A facility prepared on this node (its volume and state file), its task running."""
    DockerBackend(fake).create_volume(
        "medcell-far-data", config.labels(facility="far", role="data")
    )
    state_file.save(config, "far", FacilityState())
    node_engine.running["far"] = True
    return "far"


def test_stop_marks_it_stopped_first_scales_it_down_and_routes_it_stopped(
    client, config, node_engine, here
):
    assert client.lifecycle(here, "stop") == "stopped"
    assert node_engine.asked == [("sleep", "far")]
    assert state_file.load(config, "far").desired == Desired.STOPPED
    assert routes.read_routes(config)["facilities"]["far"] == {"state": RouteState.STOPPED}


def test_a_stopped_facility_neither_sleeps_nor_wakes_until_started(client, node_engine, here):
    client.lifecycle(here, "stop")
    for action in ("sleep", "wake"):
        with pytest.raises(FacilityStopped, match="facility far is stopped"):
            client.lifecycle(here, action)
    assert node_engine.asked == [("sleep", "far")]


def test_an_unknown_action_or_facility_is_refused(client, node_engine, here):
    with pytest.raises(InvalidArgument, match="action must be one of sleep, wake, stop, start"):
        client.lifecycle(here, "restart")
    with pytest.raises(FacilityNotFound):
        client.lifecycle("nowhere", "stop")
    assert node_engine.asked == []


def test_a_node_without_its_cluster_engine_says_so(config, fake, tls_dir, here):
    server = _serve(config, fake, tls_dir, None)
    try:
        node = NodeClient(f"127.0.0.1:{server.port}", tls_dir, timeout=10)
        with pytest.raises(NodeError, match="does not run in cluster mode") as refused:
            node.lifecycle(here, "stop")
        assert (refused.value.code, refused.value.status) == ("docker_error", 503)
    finally:
        server.shutdown()
        server.server_close()
    assert state_file.load(config, "far").desired == Desired.RUNNING

"""Each node's supervisor looks after the facilities pinned to its node: a facility service on
node3, prepared there as the node API's prepare does, is put to sleep by node3's supervisor (0
replicas) and woken by a request through node3's own gateway, or through node1's, which forwards
it to node3 (1 replica, answered)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import docker
import pytest

from devsupport.waiting import eventually
from medcell_common.interfaces import NODE_API_PORT, RouteState
from provisioner.host import specs
from provisioner.host.engine import SwarmEngine
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import Swarm
from tests.cluster.conftest import lab_config

pytestmark = pytest.mark.lab

SLUG = "sleepy"
IDLE = "15s"  # its own idle timeout, given when it is prepared
SLEEP_WITHIN = 120  # discovery (30 s), its idle time, the sleep handshake, with room


def address(node: str) -> str:
    return f"10.231.7.{node.removeprefix('node')}"


def node_client(lab, node: str, target: str, call: str) -> dict:
    """Call NodeClient(target).<call> from `node`, with that node's own TLS files."""
    script = (
        "import json, os, pathlib, sys\n"
        "from provisioner.host.node_api import NodeClient\n"
        "tls = pathlib.Path(os.environ['MEDCELL_HOME']) / 'cluster'\n"
        f"client = NodeClient('{address(target)}:{NODE_API_PORT}', tls, timeout=60)\n"
        f"print(json.dumps(client.{call}))\n"
    )
    result = lab.run(node, "python", "-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def on_node3(lab, code: str) -> None:
    """Run Python as node3 (its MEDCELL_HOME, its engine) with `config` and `SLUG` given.

    Preparing through the node API itself fails in the lab: its supervisor runs as root with no
    capabilities and cannot give the socket folder to the facility's uid.
    """
    script = (
        "from provisioner.host import facility_data, routes, state_file\n"
        "from provisioner.host.config import Config\n"
        "from provisioner.host.docker_backend import DockerBackend\n"
        f"config, SLUG = Config.from_env(), {SLUG!r}\n" + code
    )
    result = lab.run("node3", "python", "-c", script)
    assert result.returncode == 0, result.stderr[-2000:]


def request(lab, through: str) -> str:
    """GET the facility's /healthz through `through`'s gateway; its HTTP status."""
    host = f"{SLUG}.localhost"
    result = lab.run(
        through,
        "curl", "-sk", "--max-time", "90", "-o", "/dev/null", "-w", "%{http_code}",
        "--resolve", f"{host}:8443:{address(through)}", f"https://{host}:8443/healthz",
        timeout=120,
    )  # fmt: skip
    return result.stdout.strip()


@dataclass
class Sleepy:
    swarm: Swarm  # through node1, a manager
    name: str

    def replicas(self) -> int:
        state = self.swarm.service(self.name)
        return -1 if state is None else state.replicas

    def running(self) -> bool:
        state = self.swarm.service(self.name)
        return state is not None and state.running and state.task.node == "node3"


def routes_of(lab, node: str) -> dict:
    path = lab.directory / node / "home" / "gateway" / "routes.json"
    return json.loads(path.read_text())["facilities"]


@pytest.fixture
def sleepy(lab):
    config = lab_config(lab.node_view / "home")  # the path every node sees its own home at
    facility = config.facility(SLUG)
    node1 = docker.DockerClient(base_url=f"unix://{lab.directory / 'node1' / 'docker.sock'}")
    node3 = docker.DockerClient(base_url=f"unix://{lab.directory / 'node3' / 'docker.sock'}")
    swarm = Swarm(node1)
    labels = {"name": "Sleepy Practice", "retention": "7d", "idle": IDLE}
    on_node3(lab, f"facility_data.prepare(config, DockerBackend(), SLUG, {labels!r})\n")
    image_id = node3.images.get(config.facility_image).id
    spec = specs.facility_spec(config, facility, "Sleepy Practice", "7d", image_id)
    try:
        swarm.create_service(facility_service_spec(spec, "node3", replicas=1))
        yield Sleepy(swarm, facility.container)
    finally:
        # Shown when a test failed: what node3's supervisor said (content-free lines).
        logs = "docker logs $(docker ps -q --filter label=medcell.role=supervisor) 2>&1 | tail -40"
        print(lab.run("node3", "sh", "-c", logs).stdout)
        SwarmEngine(config, swarm).remove(SLUG)
        on_node3(
            lab,
            "import shutil\n"
            "routes.set_route(config, SLUG, None)\n"
            "state_file.remove(config, SLUG)\n"
            "facility = config.facility(SLUG)\n"
            "shutil.rmtree(facility.socket_dir)\n"
            "for volume in (facility.data_volume, facility.keys_volume):\n"
            "    DockerBackend().remove_volume(volume)\n",
        )
        node1.close()
        node3.close()


def test_node3s_supervisor_sleeps_its_facility_and_its_gateway_wakes_it(sleepy, lab):
    assert eventually(sleepy.running, bool, 60)
    # node3's supervisor found it (a route on node3), and after its idle time scaled it to 0.
    assert eventually(sleepy.replicas, lambda r: r == 0, SLEEP_WITHIN) == 0
    assert routes_of(lab, "node3")[SLUG] == {"state": RouteState.ASLEEP}
    assert eventually(sleepy.running, lambda r: not r, 30) is False

    assert request(lab, "node3") == "200"
    assert sleepy.replicas() == 1 and sleepy.running()
    assert routes_of(lab, "node3")[SLUG] == {"state": RouteState.RUNNING}


def test_a_request_through_node1_wakes_it_through_node3s_activator(sleepy, lab):
    # Newer than any map the managers pushed (`up` and `facility create` push one): their
    # generations are wall-clock microseconds too.
    generation = time.time_ns() // 1000
    node3_entry = {"node": "node3", "address": address("node3")}
    pushed = node_client(
        lab, "node1", "node1", f"push_routes({generation}, {{{SLUG!r}: {node3_entry!r}}})"
    )
    try:
        assert pushed["remote"] == 1
        assert routes_of(lab, "node1")[SLUG]["state"] == RouteState.REMOTE
        assert eventually(sleepy.replicas, lambda r: r == 0, SLEEP_WITHIN) == 0

        assert request(lab, "node1") == "200"
        assert sleepy.replicas() == 1 and sleepy.running()
    finally:
        node_client(lab, "node1", "node1", f"push_routes({generation + 1}, {{}})")

"""A facility as a Swarm service: created from node1, pinned to node3, hardened on its running
task there, asleep at 0 replicas and awake again at 1; placement over the lab's real nodes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from devsupport.waiting import eventually
from medcell_common.interfaces import RouteState
from provisioner.host import facility_http, lifecycle, placement, routes, specs, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import SwarmEngine
from provisioner.host.errors import InvalidArgument, WakeFailed
from provisioner.host.swarm import Swarm, pin_constraint
from tests.cluster.conftest import lab_config

pytestmark = pytest.mark.lab

SLUG = "pinned"


@dataclass
class Pinned:
    config: Config  # node3's home as this test sees it: its socket directory, routes, state
    swarm: Swarm  # through node1, a manager
    node3: docker.DockerClient
    engine: SwarmEngine
    name: str


def _client(lab, node: str) -> docker.DockerClient:
    return docker.DockerClient(
        base_url=f"unix://{lab.directory / node / 'docker.sock'}", timeout=60
    )


def _home(lab, node: str) -> Path:
    result = lab.run(node, "sh", "-c", 'echo "$MEDCELL_HOME"')
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def _prepare_on_node3(lab, config: Config) -> None:
    """What the node API's prepare does there: the two volumes and the socket directory."""
    facility = config.facility(SLUG)
    labels = config.labels(facility=SLUG, role="data")
    label_args = " ".join(f"--label {k}={v}" for k, v in labels.items())
    script = (
        f"docker volume create {label_args} {facility.data_volume} >/dev/null && "
        f"docker volume create {label_args} {facility.keys_volume} >/dev/null && "
        f"mkdir -p -m 755 {facility.socket_dir.parent} && mkdir -m 711 {facility.socket_dir} && "
        f"chown {config.facility_uid}:{config.facility_uid} {facility.socket_dir}"
    )
    result = lab.run("node3", "sh", "-c", script)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def pinned(lab):
    # node3's engine resolves the spec's host paths inside node3 (every node keeps its
    # MEDCELL_HOME at one path); this test reaches the same folder from outside.
    node_config = lab_config(_home(lab, "node3"))
    config = lab_config(lab.outside("node3", str(node_config.home)))
    facility = config.facility(SLUG)
    node1, node3 = _client(lab, "node1"), _client(lab, "node3")
    swarm = Swarm(node1)
    _prepare_on_node3(lab, node_config)
    image_id = node3.images.get(config.facility_image).id
    spec = specs.facility_spec(
        node_config, node_config.facility(SLUG), "Pinned Practice", "7d", image_id
    )
    engine = SwarmEngine(config, swarm, DockerBackend(node3))
    try:
        engine.run(spec, node="node3")
        yield Pinned(config, swarm, node3, engine, facility.container)
    finally:
        engine.remove(SLUG)
        lab.run(
            "node3", "sh", "-c",
            f"docker volume rm -f {facility.data_volume} {facility.keys_volume}; "
            f"rm -rf {facility.socket_dir}",
        )  # fmt: skip
        node1.close()
        node3.close()


def _task_process(pinned: Pinned) -> int:
    task = pinned.swarm.wait_running(pinned.name, 60)
    container = pinned.node3.containers.get(task.container_id)
    return int(container.attrs["State"]["Pid"])


def _status_fields(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name).read_text()
    raise AssertionError(f"no {controller} cgroup for {pid}")


def _mounts(pid: int) -> dict[str, list[str]]:
    found = {}
    for line in Path(f"/proc/{pid}/mounts").read_text().splitlines():
        _, target, kind, options, *_ = line.split()
        found[target] = [kind, *options.split(",")]
    return found


def test_the_service_is_pinned_to_node3_and_its_task_runs_there(pinned):
    task = pinned.swarm.wait_running(pinned.name, 60)
    assert task.node == "node3"
    raw = pinned.swarm.client.api.inspect_service(pinned.name)["Spec"]
    assert raw["TaskTemplate"]["Placement"]["Constraints"] == [pin_constraint("node3")]
    state = pinned.swarm.service(pinned.name)
    assert (state.slug, state.node, state.replicas) == (SLUG, "node3", 1)
    assert state.running and state.task.container_id == task.container_id
    # The container on node3 carries a single-host facility container's labels.
    labels = pinned.node3.containers.get(task.container_id).labels
    assert pinned.config.labels(facility=SLUG, role="facility").items() <= labels.items()
    facility_http.wait_healthy(pinned.config, SLUG, 60)


def test_the_running_task_has_no_network_no_new_privileges_and_its_limits(pinned):
    pid = _task_process(pinned)
    status = _status_fields(pid)
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == "0000000000000000"
    assert status["Uid"].split()[0] == str(pinned.config.facility_uid)
    devices = [
        line.split(":")[0].strip()
        for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    ]
    assert devices == ["lo"]
    assert _cgroup_file(pid, "pids", "pids.max").strip() == "128"
    assert int(_cgroup_file(pid, "memory", "memory.limit_in_bytes")) == 256 * 2**20
    mounts = _mounts(pid)
    assert "ro" in mounts["/"]
    assert mounts["/tmp"][0] == "tmpfs"
    assert {"noexec", "nosuid", "nodev"} <= set(mounts["/tmp"])
    assert "rw" in mounts["/data"] and "rw" in mounts["/run/medcell"]


def test_scale_to_zero_removes_the_container_and_one_brings_it_back_on_node3(pinned):
    facility_http.wait_healthy(pinned.config, SLUG, 60)
    first = pinned.swarm.wait_running(pinned.name, 60).container_id
    state_file.save(pinned.config, SLUG, state_file.FacilityState())
    routes.set_route(pinned.config, SLUG, RouteState.RUNNING)
    # The lifecycle of a single host, over the Swarm engine: no gateway on node3 to wait for.
    assert lifecycle.put_to_sleep(pinned.config, pinned.engine, SLUG, require_idle=None)
    assert pinned.swarm.service(pinned.name).replicas == 0
    facility_filter = {"label": [f"medcell.facility={SLUG}"]}
    left = eventually(
        lambda: pinned.node3.containers.list(
            all=True, filters=facility_filter, ignore_removed=True
        ),
        lambda c: c == [],
        30,
    )
    assert left == []
    assert state_file.load(pinned.config, SLUG).asleep

    lifecycle.wake(pinned.config, pinned.engine, SLUG, reason="operator", timeout=60)
    state = pinned.swarm.service(pinned.name)
    assert state.replicas == 1 and state.running and state.task.node == "node3"
    assert state.task.container_id != first
    assert facility_http.healthy(pinned.config, SLUG)
    assert routes.read_routes(pinned.config)["facilities"][SLUG]["state"] == RouteState.RUNNING


def test_placement_over_the_real_nodes(pinned, lab):
    pinned.swarm.wait_running(pinned.name, 60)
    nodes, services = pinned.swarm.nodes(), pinned.swarm.facility_services()
    assert [s.node for s in services if s.slug == SLUG] == ["node3"]
    # Three nodes with the same memory: node3 has an awake facility, node1 comes first by name.
    assert placement.choose_node(nodes, services) == "node1"
    assert placement.check_node(nodes, "node3") == "node3"
    with pytest.raises(InvalidArgument, match=re.escape("--node 'node4': no such node")):
        placement.check_node(nodes, "node4")
    node1 = next(n for n in nodes if n.name == "node1")
    drained = pinned.swarm.client.nodes.get(node1.id)
    spec = dict(drained.attrs["Spec"])
    drained.update({**spec, "Availability": "drain"})
    try:
        nodes = pinned.swarm.nodes()
        assert placement.choose_node(nodes, services) == "node2"
        with pytest.raises(InvalidArgument, match="availability is drain"):
            placement.check_node(nodes, "node1")
    finally:
        drained.reload()
        drained.update({**drained.attrs["Spec"], "Availability": "active"})
    assert [n.availability for n in pinned.swarm.nodes()] == ["active"] * 3


def test_a_wake_whose_task_is_rejected_fails_with_its_reason_and_leaves_it_asleep(pinned, lab):
    facility_http.wait_healthy(pinned.config, SLUG, 60)
    state_file.save(pinned.config, SLUG, state_file.FacilityState())
    routes.set_route(pinned.config, SLUG, RouteState.RUNNING)
    assert lifecycle.put_to_sleep(pinned.config, pinned.engine, SLUG, require_idle=None)
    socket_dir = pinned.config.facility(SLUG).socket_dir
    assert lab.run("node3", "rm", "-rf", str(socket_dir)).returncode == 0
    with pytest.raises(WakeFailed) as raised:
        lifecycle.wake(pinned.config, pinned.engine, SLUG, reason="operator", timeout=60)
    assert "bind source path does not exist" in str(raised.value.__cause__)
    assert pinned.swarm.service(pinned.name).replicas == 0
    assert state_file.load(pinned.config, SLUG).error == "wake failed: start_failed"

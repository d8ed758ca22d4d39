"""A facility as a Swarm service (provisioner/host/service_spec.py, swarm.py) over a fake
manager: the spec it is created with, scaling, its task, removal."""

from __future__ import annotations

import pytest

from provisioner.host import specs
from provisioner.host.config import Config
from provisioner.host.docker_backend import TMPFS
from provisioner.host.errors import DockerError
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import Swarm, pin_constraint
from tests.provisioner.fakeswarm_replicated import FakeSwarm


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(home=tmp_path / "home")


@pytest.fixture
def fake() -> FakeSwarm:
    fake = FakeSwarm()
    for name in ("node1", "node2", "node3"):
        fake.add_node(name)
    return fake


@pytest.fixture
def swarm(fake) -> Swarm:
    return Swarm(fake)


def spec_of(config: Config, slug: str = "praxis"):
    return specs.facility_spec(config, config.facility(slug), "Praxis", "7d", "sha256:abc")


def create(swarm: Swarm, spec, node: str) -> str:
    return swarm.create_service(facility_service_spec(spec, node))


def created(fake: FakeSwarm) -> dict:
    assert len(fake.created) == 1
    return fake.created[0]


def test_the_service_is_named_labelled_and_pinned_like_the_facility(config, fake, swarm):
    create(swarm, spec_of(config), "node3")
    spec = created(fake)
    assert spec["Name"] == "medcell-praxis"
    # Its node's label too: each node's supervisor asks the manager for its own services only.
    assert spec["Labels"] == {
        **config.labels(facility="praxis", role="facility"),
        "medcell.node": "node3",
    }
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.medcell.node==node3"]
    assert pin_constraint("node3") == "node.labels.medcell.node==node3"


def test_the_task_gets_every_setting_of_the_single_host_container(config, fake, swarm):
    local = spec_of(config)
    create(swarm, local, "node3")
    container = created(fake)["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == "medcell-facility:latest"
    assert container["User"] == "10001:10001"
    # The node finds the task's container by the labels a single-host container has.
    assert container["Labels"] == local.labels
    assert config.labels(facility="praxis", role="facility").items() <= container["Labels"].items()
    assert sorted(container["Env"]) == sorted(f"{k}={v}" for k, v in local.environment.items())
    assert "MEDCELL_BIND=unix:/run/medcell/app.sock" in container["Env"]
    assert container["Healthcheck"] == {"Test": ["NONE"]}


def test_the_task_is_hardened(config, fake, swarm):
    create(swarm, spec_of(config), "node3")
    template = created(fake)["TaskTemplate"]
    container = template["ContainerSpec"]
    assert container["ReadOnly"] is True
    assert container["CapabilityDrop"] == ["ALL"]
    assert "CapabilityAdd" not in container
    assert template["Resources"]["Limits"] == {
        "NanoCPUs": 1_000_000_000,
        "MemoryBytes": 256 * 2**20,
        "Pids": 128,
    }
    # No network attachment, no published port: the node's engine gives it only `lo`.
    assert "Networks" not in template
    assert "EndpointSpec" not in created(fake)
    assert container["StopGracePeriod"] == 30 * 10**9


def test_the_task_mounts_its_volumes_socket_directory_and_tmp(config, fake, swarm):
    create(swarm, spec_of(config), "node3")
    mounts = created(fake)["TaskTemplate"]["ContainerSpec"]["Mounts"]
    facility = config.facility("praxis")
    assert mounts == [
        {"Type": "volume", "Source": facility.data_volume, "Target": "/data", "ReadOnly": False},
        {"Type": "volume", "Source": facility.keys_volume, "Target": "/keys", "ReadOnly": False},
        {
            "Type": "bind",
            "Source": str(facility.socket_dir),
            "Target": "/run/medcell",
            "ReadOnly": False,
        },
        {
            "Type": "tmpfs",
            "Target": "/tmp",
            "TmpfsOptions": {"SizeBytes": 64 * 2**20, "Mode": 0o1777},
        },
    ]
    assert set(TMPFS) == {"/tmp"}


def test_a_stateful_service_restarts_on_its_node_and_never_runs_twice(config, fake, swarm):
    create(swarm, spec_of(config), "node3")
    spec = created(fake)
    assert spec["TaskTemplate"]["RestartPolicy"] == {
        "Condition": "any",
        "Delay": 5 * 10**9,
        "MaxAttempts": 0,
        "Window": 0,
    }
    assert spec["UpdateConfig"]["Order"] == "stop-first"


def test_a_spec_with_a_network_or_ports_is_refused(config):
    gateway = specs.gateway_spec(config, "0:0", None)
    with pytest.raises(ValueError, match="no network"):
        facility_service_spec(gateway, "node1")


def test_scale_to_zero_and_back_keeps_the_rest_of_the_spec(config, fake, swarm):
    create(swarm, spec_of(config), "node2")
    before = swarm.client.api.inspect_service("medcell-praxis")["Spec"]["TaskTemplate"]
    swarm.scale("medcell-praxis", 0)
    state = swarm.service("medcell-praxis")
    assert (state.replicas, state.task, state.running) == (0, None, False)
    swarm.scale("medcell-praxis", 1)
    after = swarm.client.api.inspect_service("medcell-praxis")["Spec"]
    assert after["TaskTemplate"] == before
    assert after["Labels"] == {
        **config.labels(facility="praxis", role="facility"),
        "medcell.node": "node2",
    }


def test_the_service_state_names_its_node_container_and_task(config, fake, swarm):
    create(swarm, spec_of(config), "node3")
    state = swarm.service("medcell-praxis")
    assert (state.slug, state.node, state.replicas, state.running) == ("praxis", "node3", 1, True)
    task = state.task
    assert task.node == "node3" and task.state == "running" and task.container_id
    assert swarm.wait_running("medcell-praxis", 1) == task
    assert swarm.service("medcell-other") is None


def test_a_rejected_task_raises_its_error_once(config, fake, swarm):
    fake.reject = 'invalid mount config for type "bind": bind source path does not exist:\n /x'
    create(swarm, spec_of(config), "node3")
    with pytest.raises(DockerError) as raised:
        swarm.wait_running("medcell-praxis", 1)
    # The engine's error on one line; an earlier failure is not a later wake's.
    assert str(raised.value) == (
        'the task of medcell-praxis rejected: invalid mount config for type "bind": '
        "bind source path does not exist: /x"
    )
    with pytest.raises(DockerError, match="not running after 0 s"):
        swarm.wait_running("medcell-praxis", 0, ignore=swarm.failed_tasks("medcell-praxis"))


def test_remove_is_fine_twice_and_listing_sees_the_pin(config, fake, swarm):
    create(swarm, spec_of(config), "node1")
    listed = swarm.facility_services()
    assert [(s.slug, s.node, s.replicas) for s in listed] == [("praxis", "node1", 1)]
    swarm.remove_service("medcell-praxis")
    swarm.remove_service("medcell-praxis")
    assert swarm.facility_services() == []

"""A node back after `node evacuate` destroys its stale copy of each facility that now lives on
another node (provisioner/supervisor/cluster.py `destroy_stale_copies`).

This node is node3; its engine (volumes, one-off containers) and the managers (services, tasks,
the cluster's locks) are the fake cluster's; the decision is made on what the managers say.
"""

from __future__ import annotations

import logging

import pytest

from provisioner.host import facility_data, routes, specs, state_file
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import Swarm, SwarmConfigs
from provisioner.supervisor.cluster import destroy_stale_copies
from tests.provisioner.fakedocker import api_error
from tests.provisioner.test_cluster_facilities import ClusterEngine

META = {"name": "Praxis", "retention": "7d"}
NODE = "node3"


@pytest.fixture
def cluster():
    return ClusterEngine()


@pytest.fixture
def backend(cluster, config):
    cluster.images_present.add(config.facility_image)  # the one-off wipe and shred run from it
    return DockerBackend(cluster)


def _copy_here(config, backend, slug):
    """What a facility leaves on this node: its two volumes, state file, socket folder, route."""
    facility_data.prepare(config, backend, slug, META)
    routes.set_route(config, slug, "asleep")


def _service(config, cluster, slug, node, replicas=1):
    spec = specs.facility_spec(config, config.facility(slug), slug.title(), "7d")
    Swarm(cluster).create_service(facility_service_spec(spec, node, replicas=replicas))


def _left(config, cluster, slug) -> list[str]:
    facility = config.facility(slug)
    left = [v for v in cluster.volumes_by_name if v.startswith(f"{facility.container}-")]
    if state_file.state_path(config, slug).exists():
        left.append("state file")
    if facility.socket_dir.exists():
        left.append("socket folder")
    if slug in (routes.read_routes(config) or {}).get("facilities", {}):
        left.append("route")
    return left


def test_a_copy_of_a_facility_pinned_to_and_running_on_another_node_is_destroyed(
    config, cluster, backend, caplog
):
    _copy_here(config, backend, "evacuated")
    _service(config, cluster, "evacuated", "node1")
    caplog.set_level(logging.INFO)

    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == ["evacuated"]
    assert _left(config, cluster, "evacuated") == []
    assert cluster.shredded == [config.facility("evacuated").keys_volume]
    assert not (config.home / "deletions.log").exists()  # it lives on, on node1
    logged = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event")]
    assert {"event": "stale_copy_destroyed", "slug": "evacuated", "node": "node1"}.items() <= (
        next(f for f in logged if f["event"] == "stale_copy_destroyed").items()
    )
    # The facility on node1 is not touched.
    assert Swarm(cluster).service(config.facility("evacuated").container).running


def test_a_facility_pinned_here_is_never_touched(config, cluster, backend):
    _copy_here(config, backend, "ours")
    _service(config, cluster, "ours", NODE)
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {"ours": 1}) == []
    # Even when the discovery's own list missed it, the managers' pin says it is this node's.
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == []
    assert len(_left(config, cluster, "ours")) == 5


def test_a_copy_is_kept_until_the_facility_runs_on_its_new_node(config, cluster, backend):
    _copy_here(config, backend, "asleep")
    _service(config, cluster, "asleep", "node1", replicas=0)  # pinned there, no task running
    _copy_here(config, backend, "orphan")  # no service at all: not this rule's to decide
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == []
    assert len(_left(config, cluster, "asleep")) == 5
    assert len(_left(config, cluster, "orphan")) == 5

    Swarm(cluster).scale(config.facility("asleep").container, 1)
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == ["asleep"]
    assert _left(config, cluster, "asleep") == []


def test_nothing_is_destroyed_while_a_command_holds_the_facility_cluster_wide(
    config, cluster, backend
):
    # A move back to this node, or one being rolled back, holds the facility's cluster lock.
    _copy_here(config, backend, "moving")
    _service(config, cluster, "moving", "node1")
    locks = SwarmLocks(config, SwarmConfigs(cluster), host="node1")
    with locks.hold("moving"):
        assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == []
        assert len(_left(config, cluster, "moving")) == 5
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == ["moving"]
    assert not cluster.configs.by_name  # the lock it took is given back


def test_without_a_manager_nothing_is_decided(config, cluster, backend):
    _copy_here(config, backend, "evacuated")
    _service(config, cluster, "evacuated", "node1")
    cluster.api.inspect_service = _unreachable
    cluster.services.list = _unreachable
    assert destroy_stale_copies(config, backend, Swarm(cluster), NODE, {}) == []
    assert len(_left(config, cluster, "evacuated")) == 5


def _unreachable(*_args, **_kwargs):
    raise api_error(500, "rpc error: The swarm does not have a leader.")

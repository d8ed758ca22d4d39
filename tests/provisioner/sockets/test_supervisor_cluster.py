"""A cluster node's supervisor (provisioner/supervisor/cluster.py): the facility services pinned
to its node, slept and woken by scaling, and what it does without a manager.

This node is node3. The manager is the fake Swarm; a task it starts on node3 is a container on
node3's (fake) engine with a real facility socket behind it; the wake API is a real unix socket.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from medcell_common.interfaces import RouteState
from provisioner.host import cluster_ca, routes, specs, state_file
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import NodeError
from provisioner.host.manager_swarm import ManagerSwarm
from provisioner.host.node_api import NodeClient
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import CERT_LABEL, Swarm, SwarmConfigs, pin_constraint
from provisioner.supervisor import cluster
from provisioner.supervisor.cluster import NodeEngine
from provisioner.supervisor.node_api import NodeServer, NodeService
from provisioner.supervisor.service import Supervisor
from tests.provisioner.fakeconfigs import ConfigStore, FakeConfigAPI
from tests.provisioner.fakedocker import api_error
from tests.provisioner.fakeswarm_replicated import FakeSwarm
from tests.provisioner.sockets.fakes import Engine, FakeFacility
from tests.provisioner.sockets.test_supervisor import post, route

NODE = "node3"


class Manager(FakeSwarm):
    """The fake manager, seen through node3's engine: a manager that may be cut off, or a
    worker; it counts what node3's supervisor asks of it."""

    def __init__(self):
        super().__init__()
        self.manager = True  # False: node3 is a worker
        self.reachable = True  # False: node3 is cut off from the managers
        self.calls = 0
        for method in ("inspect_service", "update_service", "tasks"):
            setattr(self.api, method, self._guarded(getattr(self.api, method)))
        self.services.list = self._guarded(self.services.list)
        self.configs = ConfigStore()  # the cluster's locks
        configs = FakeConfigAPI(self.configs)
        for method in ("create_config", "inspect_config", "remove_config"):
            setattr(self.api, method, self._guarded(getattr(configs, method)))
        for method in ("_url", "_post_json", "_raise_for_status"):
            setattr(self.api, method, getattr(configs, method))

    def _guarded(self, call):
        def guarded(*args, **kwargs):
            self.calls += 1
            if not self.manager:
                raise api_error(503, "This node is not a swarm manager.")
            if not self.reachable:
                raise api_error(500, "rpc error: The swarm does not have a leader.")
            return call(*args, **kwargs)

        return guarded

    def info(self) -> dict:
        self.calls += 1
        return {
            "Name": NODE,
            "Swarm": {
                "LocalNodeState": "active",
                "ControlAvailable": self.manager,
                "NodeID": self.nodes_by_name[NODE].id,
            },
        }

    def replicas(self, slug: str) -> int:
        return self.services_by_name[f"medcell-{slug}"]["Spec"]["Mode"]["Replicated"]["Replicas"]


class WorkerEngine:
    """node3's own engine as a Swarm worker: it knows the managers' addresses, answers no
    Swarm call."""

    def __init__(self, manager: Manager):
        self.manager = manager
        self.api = self

    def info(self) -> dict:
        return {
            "Name": NODE,
            "Swarm": {
                "LocalNodeState": "active",
                "ControlAvailable": False,
                "NodeID": self.manager.nodes_by_name[NODE].id,
                "NodeAddr": "127.0.0.3",
                # node2, a manager that is down (nothing answers there), and node1.
                "RemoteManagers": [
                    {"NodeID": "n2", "Addr": "127.0.0.1:2377"},
                    {"NodeID": "n1", "Addr": "127.0.0.2:2377"},
                ],
            },
        }

    def __getattr__(self, name):
        raise api_error(503, "This node is not a swarm manager.")


class NodeOne:
    """node1, a manager: its node API over real mutual TLS on loopback, its engine the fake
    manager's; every node's certificate from one cluster CA, each node's Swarm entry labelled
    with its certificate's common name (as `cluster init` and `join` do)."""

    def __init__(self, config: Config, manager: Manager, home):
        cluster_ca.create_ca(home)
        self.tls = {}
        for node, common_name in (("node1", "node1"), (NODE, "medcell-node-42")):
            folder = home / node
            material = cluster_ca.issue(home, common_name)
            for name, key in (("ca.crt", "ca_cert"), ("node.crt", "cert"), ("node.key", "key")):
                folder.mkdir(exist_ok=True)
                (folder / name).write_text(material[key])
            self.tls[node] = folder
            manager.nodes_by_name[node].attrs["Spec"]["Labels"][CERT_LABEL] = common_name
        self.server = NodeServer(
            ("127.0.0.2", 0), self.tls["node1"], NodeService(config, DockerBackend(manager))
        )
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def client(self, node: str = NODE) -> NodeClient:
        return NodeClient(f"127.0.0.2:{self.server.port}", self.tls[node], timeout=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    """node3 with its engine and facilities, the manager, and node3's supervisor; `worker`:
    node3 is a worker and node1's node API scales its facilities."""

    def __init__(self, config: Config, engine: Engine, clock, worker: bool = False):
        self.config, self.engine, self.clock = config, engine, clock
        self.manager = Manager()
        self.manager.add_node("node1")
        self.manager.add_node(NODE)
        self.manager.on_start = self._task_started
        self.manager.on_stop = self._task_stopped
        self.apps: dict[str, FakeFacility] = {}
        self.task_calls: list[str] = []  # `docker stop`/`start` of a task's container: never
        gateway = engine.containers.create(
            config.gateway_image, name="medcell-gateway.1.g1", labels=config.labels(role="gateway")
        )
        gateway.status = "running"
        self.node1: NodeOne | None = None
        if worker:
            self.node1 = NodeOne(config, self.manager, config.home.parent / "tls")
            remote = ManagerSwarm(
                config.prefix,
                Swarm(WorkerEngine(self.manager)).manager_addresses,
                self.node1.tls[NODE],
                port=self.node1.server.port,
            )
            self.node = NodeEngine(
                config, DockerBackend(engine), Swarm(WorkerEngine(self.manager)), remote=remote
            )
        else:
            self.node = NodeEngine(config, DockerBackend(engine), Swarm(self.manager))
        self.supervisor = Supervisor(config, DockerBackend(engine), clock=clock, node=self.node)

    def add(self, slug: str, node: str = NODE, awake: bool = True, **st) -> FakeFacility | None:
        """A facility service pinned to `node`, prepared there as the node API's prepare does."""
        facility = self.config.facility(slug)
        spec = specs.facility_spec(self.config, facility, slug.title(), "7d")
        app = self.apps[slug] = FakeFacility(self.config, slug)
        if node == NODE:
            state_file.save(self.config, slug, state_file.FacilityState(asleep=not awake, **st))
            routes.set_route(self.config, slug, RouteState.RUNNING if awake else RouteState.ASLEEP)
        Swarm(self.manager).create_service(
            facility_service_spec(spec, node, replicas=1 if awake else 0)
        )
        return app

    def _task_started(self, name: str) -> None:
        service = self.manager.services_by_name[name]
        placement = service["Spec"]["TaskTemplate"]["Placement"]
        if placement["Constraints"] != [pin_constraint(NODE)]:
            return  # runs on another node
        slug = service["Spec"]["Labels"]["medcell.facility"]
        task = self.manager.tasks_by_service[name][-1]
        container = self.engine.containers.create(
            self.config.facility_image,
            name=f"{name}.1.{task['ID']}",
            labels=self.config.labels(facility=slug, role="facility"),
        )
        container.status = "running"
        container.start = lambda: self.task_calls.append("start")
        container.stop = lambda timeout=10: self.task_calls.append("stop")
        self.apps[slug].boot()

    def _task_stopped(self, name: str) -> None:
        slug = name.removeprefix("medcell-")
        for container_name in [n for n in self.engine.containers_by_name if n.startswith(name)]:
            del self.engine.containers_by_name[container_name]
        self.apps[slug].halt()

    def settle(self) -> None:
        """One tick, then until every job it started (discovery included) is done and taken in."""
        supervisor = self.supervisor
        pools = (
            supervisor.wakes,
            supervisor.sleeps,
            supervisor.scheduler.probes,
            supervisor.scheduler.discoveries,
        )
        deadline = time.monotonic() + 15
        supervisor.scheduler.tick()
        while True:
            while not all(pool.settled() for pool in pools):
                assert time.monotonic() < deadline, "jobs did not finish"
                time.sleep(0.005)
            supervisor.scheduler.tick()
            if all(pool.settled() for pool in pools):
                return

    def run_for(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)
            self.settle()

    def close(self) -> None:
        self.supervisor.close()
        if self.node1 is not None:
            self.node1.close()
        for app in self.apps.values():
            app.halt()


@pytest.fixture
def node3(config, engine, clock, gateway):
    made = Cluster(config, engine, clock)
    yield made
    made.close()


@pytest.fixture
def worker3(config, engine, clock, gateway):
    made = Cluster(config, engine, clock, worker=True)
    yield made
    made.close()


def idle_since(app: FakeFacility, clock, started: float) -> None:
    app.on_status = lambda app: setattr(app, "idle", clock.now - started)


def events(caplog, name: str) -> list[dict]:
    return [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == name]


def test_an_idle_facility_sleeps_by_scaling_its_service_to_zero(node3, config, clock):
    app = node3.add("praxis")
    idle_since(app, clock, clock.now)
    node3.settle()
    assert set(node3.supervisor.scheduler.entries) == {"praxis"}
    node3.run_for(59)
    assert node3.manager.replicas("praxis") == 1
    node3.run_for(2)
    assert node3.manager.replicas("praxis") == 0
    assert not any(n.startswith("medcell-praxis") for n in node3.engine.containers_by_name)
    assert state_file.load(config, "praxis").asleep
    assert route(config, "praxis") == RouteState.ASLEEP
    assert node3.task_calls == []  # Swarm's containers are never stopped or started by hand


def test_a_request_through_the_wake_api_scales_it_to_one(node3, config, clock):
    app = node3.add("praxis", awake=False)
    node3.supervisor.start_server()
    node3.settle()
    assert node3.manager.replicas("praxis") == 0
    status, _, body = post(config, "/wake/praxis")
    assert (status, body) == (200, {"slug": "praxis", "state": "running"})
    assert node3.manager.replicas("praxis") == 1
    assert app.boots == 1
    assert route(config, "praxis") == RouteState.RUNNING
    assert not state_file.load(config, "praxis").asleep
    assert node3.task_calls == []


def test_a_due_deadline_wakes_it_and_it_sleeps_again_once_its_work_is_done(node3, config, clock):
    app = node3.add("praxis", awake=False, wake_at=clock.now + 120)
    app.busy_on_boot, app.next_deadline = True, clock.now + 120  # deleting, once it runs

    def deleting(app) -> None:
        if app.status_calls >= 3:  # done; the next one is tomorrow
            app.busy, app.next_deadline = False, clock.now + 86_400

    app.on_status = deleting
    node3.settle()
    node3.run_for(100)
    assert node3.manager.replicas("praxis") == 0
    # Woken DEADLINE_LEAD (10 s) before its deadline, and asleep again once its work is done.
    node3.run_for(20)
    assert app.boots == 1
    assert node3.manager.replicas("praxis") == 0
    assert [mode for _, mode in node3.manager.updates] == [
        {"Replicated": {"Replicas": 1}},
        {"Replicated": {"Replicas": 0}},
    ]
    assert state_file.load(config, "praxis").wake_at == app.next_deadline


@pytest.mark.parametrize("cut", ["worker", "unreachable"])
def test_without_a_manager_an_awake_facility_stays_awake_and_nothing_spins(
    node3, config, clock, caplog, cut
):
    if cut == "worker":
        node3.manager.manager = False
    else:
        node3.manager.reachable = False
    app = node3.add("praxis")
    idle_since(app, clock, clock.now)
    with caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        node3.settle()
        node3.run_for(600)
    assert node3.manager.replicas("praxis") == 1
    assert app.boots == 1 and node3.apps["praxis"]._server is not None  # still answering
    assert route(config, "praxis") == RouteState.RUNNING
    assert not state_file.load(config, "praxis").asleep
    # Asked for a manager every 10 s, probed every 30 s: no more.
    assert node3.manager.calls <= 2 * (600 // 10 + 2)
    assert app.status_calls <= 600 // 30 + 3
    assert [e["reason"] for e in events(caplog, "no_manager")] == [cut]
    assert [e["slug"] for e in events(caplog, "sleep_held")] == ["praxis"]
    assert node3.task_calls == []

    # A manager again: the facility goes to sleep as it would have.
    node3.manager.manager = node3.manager.reachable = True
    node3.run_for(11)
    assert node3.manager.replicas("praxis") == 0
    assert state_file.load(config, "praxis").asleep


def test_a_deadline_that_cannot_be_woken_for_is_logged_late_and_done_once_a_manager_answers(
    node3, config, clock, caplog
):
    app = node3.add("praxis", awake=False, wake_at=clock.now + 60)
    app.busy_on_boot = True  # its overdue deletions, once it runs
    node3.settle()  # a manager answered once: this node's facilities are known
    node3.manager.reachable = False
    node3.supervisor.start_server()
    with caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        node3.run_for(300)
        status, headers, body = post(config, "/wake/praxis")
    assert node3.manager.replicas("praxis") == 0 and app.boots == 0
    assert [e["slug"] for e in events(caplog, "deadline_late")] == ["praxis"]
    assert status == 503 and body["error"]["code"] == "wake_failed"
    assert node3.manager.calls <= 2 * (300 // 10 + 2)
    assert state_file.load(config, "praxis").health == "ok"  # not a fault of the facility's

    node3.manager.reachable = True
    node3.run_for(11)
    assert node3.manager.replicas("praxis") == 1 and app.boots == 1


def test_discovery_takes_only_the_services_pinned_to_this_node(node3, config, clock):
    node3.add("praxis")
    node3.add("elsewhere", node="node1")
    node3.settle()
    assert set(node3.supervisor.scheduler.entries) == {"praxis"}
    node3.run_for(120)
    assert node3.manager.replicas("elsewhere") == 1  # never slept or woken from here
    assert "elsewhere" not in routes.read_routes(config)["facilities"]


def test_discovery_asks_the_manager_for_this_nodes_services_and_for_all_now_and_then(
    node3, config, clock
):
    node3.add("praxis")
    for _ in range(2 * cluster.FULL_LISTING_EVERY):
        node3.run_for(30)  # a discovery every 30 s
    listings = node3.manager.listings
    assert len(listings) >= 2 * cluster.FULL_LISTING_EVERY
    everything = [i for i, labels in enumerate(listings) if labels == ["medcell.facility"]]
    assert everything[:2] == [0, cluster.FULL_LISTING_EVERY]  # the first, then every tenth
    assert all(
        labels == ["medcell.facility", "medcell.node=node3"]
        for i, labels in enumerate(listings)
        if i not in everything
    )


def test_a_service_repinned_here_without_its_node_label_is_found_by_the_full_listing(
    node3, config, clock
):
    node3.add("praxis")
    node3.add("arrived", node="node1")
    node3.settle()
    assert set(node3.supervisor.scheduler.entries) == {"praxis"}
    service = node3.manager.services_by_name["medcell-arrived"]["Spec"]
    service["TaskTemplate"]["Placement"]["Constraints"] = [pin_constraint("node3")]
    for _ in range(cluster.FULL_LISTING_EVERY):
        node3.run_for(30)
    assert set(node3.supervisor.scheduler.entries) == {"praxis", "arrived"}


def test_a_returning_node_first_removes_what_is_no_longer_assigned_to_it(
    node3, config, engine, clock
):
    # Left here from before: a facility now pinned to node1 (evacuated while node3 was away),
    # one whose service is gone; prepared a moment ago: one whose service is being created, and
    # one moving here from node1 (its service is pinned here once its data is restored).
    for slug in ("moved", "gone", "fresh", "arriving"):
        facility = config.facility(slug)
        state_file.save(config, slug, state_file.FacilityState())
        routes.set_route(config, slug, RouteState.RUNNING)
        facility.socket_dir.mkdir(parents=True)
        engine.volumes.create(facility.data_volume, labels=config.labels(facility=slug))
    now = clock.now
    for slug in ("fresh", "arriving"):
        os.utime(state_file.state_path(config, slug), (now, now))
        os.utime(config.facility(slug).socket_dir, (now, now))
    node3.add("moved", node="node1")
    node3.add("arriving", node="node1")
    node3.add("praxis")
    node3.add("newcomer")  # pinned here, with no route on this node yet
    routes.set_route(config, "newcomer", None)

    # The move bringing "arriving" here holds its cluster lock until it is done.
    with SwarmLocks(config, SwarmConfigs(node3.manager), host="node1").hold("arriving"):
        node3.settle()
    table = routes.read_routes(config)["facilities"]
    assert set(table) == {"praxis", "fresh", "arriving", "newcomer"}
    assert table["newcomer"] == {"state": RouteState.ASLEEP}  # its first request wakes it
    for slug in ("moved", "gone"):
        assert not state_file.state_path(config, slug).exists()
        assert not config.facility(slug).socket_dir.exists()
    for slug in ("fresh", "arriving"):
        assert state_file.state_path(config, slug).exists()
        assert config.facility(slug).socket_dir.exists()
    # The copy of "moved", which runs on node1 now, is destroyed here (no deletions.log line);
    # no other volume is touched: not one without a service, nor one a move works on.
    volumes = set(engine.volumes_by_name)
    assert "medcell-moved-data" not in volumes
    assert {"medcell-gone-data", "medcell-fresh-data", "medcell-arriving-data"} <= volumes
    assert not (config.home / "deletions.log").exists()
    assert set(node3.supervisor.scheduler.entries) == {"praxis", "newcomer"}


def test_after_a_cut_what_was_moved_away_meanwhile_is_removed_once_a_manager_answers(
    node3, config, clock
):
    node3.add("praxis")
    node3.add("moved", awake=False)
    node3.settle()
    assert set(node3.supervisor.scheduler.entries) == {"praxis", "moved"}
    node3.manager.reachable = False
    node3.run_for(40)
    # Meanwhile the managers restored it on node1 and pinned it there.
    placement = node3.manager.services_by_name["medcell-moved"]["Spec"]["TaskTemplate"]
    placement["Placement"]["Constraints"] = [pin_constraint("node1")]
    assert route(config, "moved") == RouteState.ASLEEP  # nothing is decided while cut off

    node3.manager.reachable = True
    node3.run_for(11)
    assert set(node3.supervisor.scheduler.entries) == {"praxis"}
    assert "moved" not in routes.read_routes(config)["facilities"]
    assert not state_file.state_path(config, "moved").exists()
    assert not config.facility("moved").socket_dir.exists()
    assert state_file.state_path(config, "praxis").exists()
    assert route(config, "praxis") == RouteState.RUNNING


def test_a_single_host_facility_kept_when_the_host_joined_is_still_slept_as_a_container(
    node3, config, engine, clock
):
    legacy = engine.add_facility("legacy")  # a container named medcell-legacy, no service
    idle_since(legacy, clock, clock.now)
    node3.settle()
    assert set(node3.supervisor.scheduler.entries) == {"legacy"}
    assert state_file.state_path(config, "legacy").exists()  # not taken for unassigned
    node3.run_for(61)
    assert engine.stops == ["medcell-legacy"]
    assert engine.containers_by_name["medcell-legacy"].status == "exited"
    assert route(config, "legacy") == RouteState.ASLEEP
    assert node3.manager.services_by_name == {}


# A worker: scaled through a manager's node API


def test_a_workers_idle_facility_sleeps_and_wakes_through_a_managers_node_api(
    worker3, config, clock, caplog
):
    app = worker3.add("praxis")
    idle_since(app, clock, clock.now)
    worker3.supervisor.start_server()
    with caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        worker3.settle()
        assert set(worker3.supervisor.scheduler.entries) == {"praxis"}
        worker3.run_for(61)
        assert worker3.manager.replicas("praxis") == 0  # scaled by node1, asked by node3
        assert state_file.load(config, "praxis").asleep
        assert route(config, "praxis") == RouteState.ASLEEP

        # A request for it through node3's wake API: node1 scales it to 1, it answers.
        status, _, body = post(config, "/wake/praxis")
        assert (status, body) == (200, {"slug": "praxis", "state": "running"})
        assert worker3.manager.replicas("praxis") == 1
        assert route(config, "praxis") == RouteState.RUNNING
    assert events(caplog, "no_manager") == []
    assert worker3.task_calls == []
    assert worker3.node.remote.swarm.answered == "127.0.0.2"  # the manager that answers


def test_a_worker_may_scale_only_the_facilities_pinned_to_it(worker3, config):
    worker3.add("praxis")
    worker3.add("elsewhere", node="node1")
    node3 = worker3.node1.client(NODE)
    assert node3.scaling_lookup(["elsewhere", "gone"]) == {
        "node": NODE,
        "pinned": {"praxis": 1},
        "placed": {"praxis": NODE, "elsewhere": "node1"},
    }
    assert node3.scale("praxis", 0) == 0
    assert worker3.manager.replicas("praxis") == 0
    with pytest.raises(NodeError) as refused:
        node3.scale("elsewhere", 0)
    assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    with pytest.raises(NodeError, match="not pinned"):
        node3.scaling_service("elsewhere")
    assert worker3.manager.replicas("elsewhere") == 1


def test_a_certificate_no_node_carries_scales_nothing(worker3, config):
    worker3.add("praxis")
    # node1's own certificate is of the cluster, but no facility is pinned to node1 here;
    # a node whose label was never set (joined before the label existed) is no one.
    del worker3.manager.nodes_by_name[NODE].attrs["Spec"]["Labels"][CERT_LABEL]
    with pytest.raises(NodeError) as refused:
        worker3.node1.client(NODE).scale("praxis", 0)
    assert refused.value.code == "forbidden"
    assert "names no node" in str(refused.value)
    with pytest.raises(NodeError, match="not pinned"):
        worker3.node1.client("node1").scale("praxis", 0)
    assert worker3.manager.replicas("praxis") == 1


def test_a_worker_whose_managers_do_not_answer_holds_its_sleeps(worker3, config, clock, caplog):
    app = worker3.add("praxis")
    idle_since(app, clock, clock.now)
    worker3.node1.close()
    with caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        worker3.settle()
        worker3.run_for(61)
    assert worker3.manager.replicas("praxis") == 1
    assert [e["reason"] for e in events(caplog, "no_manager")] == ["worker"]
    assert [e["slug"] for e in events(caplog, "sleep_held")] == ["praxis"]

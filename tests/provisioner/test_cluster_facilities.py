"""The CLI's facility lifecycle in cluster mode, against a fake Swarm manager and fake node APIs.

The engine is a fake manager whose facility services behave as replicated, pinned ones
(fakeswarm_replicated); each node's API is a recording fake that can refuse or be unreachable.
The real thing is in tests/cluster/test_facility_lifecycle.py.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from provisioner.cli.commands import Runtime, cli
from provisioner.host import locks
from provisioner.host.cluster_locks import SwarmLocks
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import FacilityCommandFailed, FacilityNotFound, NodeUnreachable
from provisioner.host.swarm import Swarm, SwarmConfigs
from tests.provisioner.fakeconfigs import ConfigClient, ConfigStore, FakeConfigAPI
from tests.provisioner.fakedocker import FakeAPI, FakeDocker
from tests.provisioner.fakeswarm_replicated import FakeSwarm as ReplicatedSwarm

GiB = 2**30
ADDRESSES = {"node1": "10.0.0.1", "node2": "10.0.0.2", "node3": "10.0.0.3"}


class ClusterAPI(FakeAPI):
    """The engine's low-level calls: containers as FakeDocker's, services as the replicated
    fake's, and the task list of all services at once."""

    def __init__(self, fake: ClusterEngine):
        super().__init__(fake)
        self.swarm = fake.swarm
        for name in ("create_service", "inspect_service", "update_service", "remove_service"):
            setattr(self, name, getattr(fake.swarm.api, name))
        configs = FakeConfigAPI(fake.configs)  # the Raft store the facilities' locks are in
        for name in ("create_config", "inspect_config", "remove_config"):
            setattr(self, name, getattr(configs, name))
        for name in ("_url", "_post_json", "_raise_for_status"):
            setattr(self, name, getattr(configs, name))

    def tasks(self, filters=None) -> list[dict]:
        filters = filters or {}
        if "service" in filters:
            return self.swarm.api.tasks(filters)
        found = []
        for name, tasks in self.swarm.tasks_by_service.items():
            service_id = self.swarm.services_by_name[name]["ID"]
            for task in tasks:
                if filters.get("desired-state") in (None, task["DesiredState"]):
                    found.append({**task, "ServiceID": service_id})
        return found


class ClusterEngine(FakeDocker):
    """A manager's engine (node1) in a three-node cluster."""

    def __init__(self):
        super().__init__()
        self.swarm = ReplicatedSwarm()
        self.configs = ConfigStore()
        for name, address in ADDRESSES.items():
            self.swarm.add_node(name).attrs["Status"]["Addr"] = address
        self.nodes = self.swarm.nodes
        self.services = self.swarm.services
        self.api = ClusterAPI(self)

    def info(self) -> dict:
        node1 = self.swarm.nodes_by_name["node1"].id
        swarm = {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": node1}
        return {"Name": "node1", "Swarm": swarm}

    def set_node(self, name: str, **fields: str) -> None:
        attrs = self.swarm.nodes_by_name[name].attrs
        if "state" in fields:
            attrs["Status"]["State"] = fields["state"]
        if "availability" in fields:
            attrs["Spec"]["Availability"] = fields["availability"]


class FakeNodeAPI:
    """Every node's API, by address: what it was asked, and what it refuses."""

    def __init__(self, config):
        self.config = config  # node1's: this host, whose node API takes the same lock files
        self.calls: list[tuple[str, str, tuple]] = []
        self.down: set[str] = set()  # addresses that do not answer
        self.failing: dict[str, Exception] = {}  # method or management command -> its error
        self.maps: dict[str, tuple[int, dict]] = {}  # address -> the map it holds
        self.data: dict[str, set[str]] = {a: set() for a in ADDRESSES.values()}
        self.on_prepare = lambda slug: None  # what happens elsewhere meanwhile
        self.engine: ClusterEngine | None = None  # a node scales its services through it

    def client(self, address: str, tls_dir, timeout: float = 30.0) -> FakeNodeClient:
        return FakeNodeClient(self, address)


class FakeNodeClient:
    def __init__(self, api: FakeNodeAPI, address: str):
        self.api, self.address = api, address

    def _call(self, method: str, *args):
        self.api.calls.append((self.address, method, args))
        if self.address in self.api.down:
            raise NodeUnreachable(f"node {self.address} does not answer its API")
        if method in self.api.failing:
            raise self.api.failing[method]
        if self.address == ADDRESSES["node1"] and args:
            # The node API on this very host takes the facility's own lock for each step.
            with locks.facility_lock(self.api.config, args[0]):
                pass

    def info(self) -> dict:
        self._call("info")
        return {"node": "?", "facilities": sorted(self.api.data[self.address]), "awake": 0}

    def prepare(self, slug: str, labels: dict) -> dict:
        self._call("prepare", slug, labels)
        self.api.data[self.address].add(slug)
        self.api.on_prepare(slug)
        return {"slug": slug, "created": []}

    def manage(self, slug: str, *command: str) -> dict:
        self._call("manage", slug, *command)
        if command[0] in self.api.failing:
            raise self.api.failing[command[0]]
        if command[0] == "create-admin":
            return {"username": command[2], "password": "pw-once"}
        if command[0] == "receipts":
            return {"receipts": [], "receipt_key": {"algorithm": "Ed25519", "public_key": "k"}}
        if command[0] == "set-quota":
            return {"quota": "1GiB", "conversation_quota": "200MiB", "used_percent": 0}
        return {}

    def lifecycle(self, slug: str, action: str) -> str:
        self._call("lifecycle", slug, action)
        replicas = 0 if action in ("sleep", "stop") else 1
        Swarm(self.api.engine).scale(f"medcell-{slug}", replicas)
        return {"sleep": "asleep", "stop": "stopped"}.get(action, "running")

    def destroy(self, slug: str) -> dict:
        self._call("destroy", slug)
        if slug not in self.api.data[self.address]:
            raise FacilityNotFound(f"no facility {slug} on this node")
        self.api.data[self.address].discard(slug)
        return {"slug": slug, "shredded": 2, "receipt": {"receipt_id": "r1"}, "receipt_key": {}}

    def forget_tombstones(self, slug: str) -> int:
        self._call("forget_tombstones", slug)
        return 0

    def forget(self, slug: str) -> dict:
        self._call("forget", slug)
        return {"slug": slug, "keys": 0, "held": 0}

    def push_routes(self, generation: int, facilities: dict) -> dict:
        self._call("push_routes", generation, facilities)
        assert 0 < generation <= 2**53  # the node API takes only JSON-safe integers
        self.api.maps[self.address] = (generation, facilities)
        return {"generation": generation}


@pytest.fixture
def engine() -> ClusterEngine:
    return ClusterEngine()


@pytest.fixture
def nodes(config, engine) -> FakeNodeAPI:
    api = FakeNodeAPI(config)
    api.engine = engine
    return api


@pytest.fixture
def medcell(config, engine, nodes):
    """`medcell …` on node1, a manager that joined the cluster (its node certificate)."""
    (config.home / "cluster").mkdir(parents=True)
    (config.home / "cluster" / "node.crt").write_text("NODE CERT")
    runtime = Runtime(config, DockerBackend(engine))
    runtime.facilities.cluster.node_client = nodes.client
    runtime.facilities.lock_wait = 0.2  # what a command waits for another on the same facility

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), obj=runtime)

    return run


def ok(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error(result) -> str:
    assert result.exit_code == 1, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: "), result.stderr
    return last


def service_spec(engine: ClusterEngine, slug: str) -> dict:
    return engine.swarm.services_by_name[f"medcell-{slug}"]["Spec"]


def test_create_goes_to_the_node_with_most_room_and_pins_it_there(medcell, engine, nodes):
    engine.swarm.nodes_by_name["node2"].attrs["Description"]["Resources"]["MemoryBytes"] = 16 * GiB
    out = ok(medcell("facility", "create", "praxis", "--name", "Praxis", "--json"))
    assert out["node"] == "node2"
    assert (out["admin_user"], out["admin_password"]) == ("admin", "pw-once")
    spec = service_spec(engine, "praxis")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.medcell.node==node2"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    # Its data is made on node2 and its admin there; every node gets the map naming node2.
    asked = [(a, m, args[0]) for a, m, args in nodes.calls if m != "push_routes"]
    assert asked[0] == ("10.0.0.2", "prepare", "praxis")
    assert ("10.0.0.2", "manage", "praxis") in asked
    prepared = next(args for _, m, args in nodes.calls if m == "prepare")
    assert prepared[1]["name"] == "Praxis" and prepared[1]["retention"] == "7d"
    assert set(nodes.maps) == set(ADDRESSES.values())
    for _, facilities in nodes.maps.values():
        assert facilities == {"praxis": {"node": "node2", "address": "10.0.0.2"}}


def test_create_with_node_goes_there_and_list_show_status_name_it(medcell, engine, nodes):
    ok(medcell("facility", "create", "far", "--node", "node3", "--quota", "1GiB", "--json"))
    assert ("10.0.0.3", "manage", ("far", "set-quota", "--facility", "1GiB")) in nodes.calls
    listed = ok(medcell("facility", "list", "--json"))
    assert listed == [{"slug": "far", "name": "far", "status": "running", "node": "node3"}]
    assert "node3" in medcell("facility", "list").stdout
    shown = ok(medcell("facility", "show", "far", "--json"))
    assert (shown["node"], shown["status"], shown["retention"]) == ("node3", "running", "7d")
    assert ok(medcell("status", "--json"))["facility_nodes"] == {"far": "node3"}


def test_a_facility_on_this_very_host_is_made_and_deleted_through_its_node_api(medcell, nodes):
    assert ok(medcell("facility", "create", "here", "--node", "node1", "--json"))["node"] == "node1"
    assert ok(medcell("facility", "delete", "here", "--yes", "--json"))["node"] == "node1"


def test_a_second_command_on_the_facility_waits_for_the_first(medcell, config, engine):
    # Another manager (its own engine client, the same Raft store) holds the facility's lock.
    other = SwarmLocks(config, SwarmConfigs(ConfigClient(engine.configs)), host="node2")
    locks.set_holder("medcell facility backup")
    with other.hold("held"):
        result = medcell("facility", "create", "held")
    assert "gave up after waiting 0.2 s" in error(result)
    assert "held by medcell facility backup on node2" in error(result)
    assert engine.swarm.services_by_name == {}
    assert engine.configs.by_name == {}  # released: nothing of the lock is left


def test_each_push_has_a_larger_generation(medcell, nodes):
    ok(medcell("facility", "create", "first", "--json"))
    before = nodes.maps["10.0.0.1"][0]
    ok(medcell("facility", "create", "second", "--json"))
    generation, facilities = nodes.maps["10.0.0.1"]
    assert generation > before
    assert set(facilities) == {"first", "second"}


@pytest.mark.parametrize(
    "change, args, words",
    [
        ({}, ["--node", "node9"], "no such node"),
        ({"availability": "drain"}, ["--node", "node3"], "availability is drain"),
        ({"state": "down"}, ["--node", "node3"], "state is down"),
    ],
)
def test_create_refuses_a_node_that_cannot_take_it(medcell, engine, nodes, change, args, words):
    if change:
        engine.set_node("node3", **change)
    assert words in error(medcell("facility", "create", "x", *args))
    assert engine.swarm.services_by_name == {} and nodes.calls == []


def test_create_without_room_anywhere_says_why_for_each_node(medcell, engine, nodes):
    for name in ADDRESSES:
        engine.swarm.nodes_by_name[name].attrs["Description"]["Resources"]["MemoryBytes"] = GiB
    message = error(medcell("facility", "create", "x"))
    assert "no node can take a new facility" in message and "node3 is full" in message
    assert engine.swarm.services_by_name == {} and nodes.calls == []


def test_node_outside_a_cluster_is_refused(config, fake, runtime):
    result = CliRunner().invoke(cli, ["facility", "create", "x", "--node", "n1"], obj=runtime)
    assert "this host is not in a cluster" in error(result)
    assert fake.containers_by_name == {}


def test_a_node_api_that_refuses_undoes_the_create(medcell, engine, nodes):
    nodes.failing["create-admin"] = FacilityCommandFailed("node 10.0.0.3: create-admin failed")
    assert "create-admin failed" in error(medcell("facility", "create", "x", "--node", "node3"))
    assert engine.swarm.services_by_name == {}
    assert ("10.0.0.3", "destroy", ("x",)) in nodes.calls
    assert nodes.data["10.0.0.3"] == set() and nodes.maps == {}


def test_an_unreachable_node_is_reported_and_gets_the_map_next_time(medcell, nodes):
    nodes.down.add("10.0.0.2")
    result = medcell("facility", "create", "a", "--node", "node3", "--json")
    assert ok(result)["node"] == "node3"
    assert "node node2 did not take the routes map" in result.stderr
    assert "10.0.0.2" not in nodes.maps
    nodes.down.clear()
    ok(medcell("facility", "create", "b", "--node", "node1", "--json"))
    assert set(nodes.maps["10.0.0.2"][1]) == {"a", "b"}


def test_delete_removes_the_service_then_the_data_on_its_node(medcell, engine, nodes, config):
    ok(medcell("facility", "create", "gone", "--node", "node3", "--json"))
    out = ok(medcell("facility", "delete", "gone", "--yes", "--json"))
    assert (out["deleted"], out["node"], out["keys_destroyed"]) == (True, "node3", 2)
    assert out["receipt"] == {"receipt_id": "r1"}
    assert engine.swarm.services_by_name == {}
    assert nodes.data["10.0.0.3"] == set()
    for _, facilities in nodes.maps.values():
        assert facilities == {}
    assert error(medcell("facility", "delete", "gone", "--yes")).startswith("Error: no facility")


def test_delete_without_a_service_finds_what_a_node_still_holds(medcell, engine, nodes):
    nodes.data["10.0.0.2"].add("left")
    out = ok(medcell("facility", "delete", "left", "--yes", "--json"))
    assert out["node"] == "node2" and nodes.data["10.0.0.2"] == set()


def test_a_create_racing_another_managers_leaves_that_ones_data_alone(medcell, engine, nodes):
    def other_manager_creates(slug: str) -> None:
        # The other manager's create of the same slug, on the same node, gets its service in.
        spec = {"Placement": {"Constraints": ["node.labels.medcell.node==node3"]}}
        labels = {"medcell.facility": slug}
        engine.swarm.api.create_service(spec, name=f"medcell-{slug}", labels=labels,
                                        mode={"Replicated": {"Replicas": 1}})  # fmt: skip

    nodes.on_prepare = other_manager_creates
    assert "already exists" in error(medcell("facility", "create", "twin", "--node", "node3"))
    assert "medcell-twin" in engine.swarm.services_by_name
    assert not [c for c in nodes.calls if c[1] == "destroy"]
    assert nodes.data["10.0.0.3"] == {"twin"}


# the other facility commands, each on the facility's own node


def _lifecycle_calls(nodes) -> list[tuple[str, str, str]]:
    return [(a, args[0], args[1]) for a, m, args in nodes.calls if m == "lifecycle"]


def _status(medcell, slug: str) -> str:
    return next(r["status"] for r in ok(medcell("facility", "list", "--json")) if r["slug"] == slug)


def test_stop_and_start_go_to_the_facilitys_node_and_list_says_stopped(medcell, engine, nodes):
    ok(medcell("facility", "create", "far", "--node", "node3", "--json"))
    assert ok(medcell("facility", "stop", "far", "--json")) == {
        "slug": "far",
        "status": "stopped",
        "node": "node3",
    }
    assert _status(medcell, "far") == "stopped"
    assert service_spec(engine, "far")["Mode"] == {"Replicated": {"Replicas": 0}}
    assert ok(medcell("facility", "start", "far", "--json"))["status"] == "running"
    assert _status(medcell, "far") == "running"
    assert "medcell.stopped" not in service_spec(engine, "far")["Labels"]
    assert _lifecycle_calls(nodes) == [("10.0.0.3", "far", "stop"), ("10.0.0.3", "far", "start")]


def test_sleep_and_wake_go_to_the_facilitys_node(medcell, nodes):
    ok(medcell("facility", "create", "far", "--node", "node2", "--json"))
    result = medcell("facility", "sleep", "far")
    assert result.exit_code == 0 and result.stdout == "facility far is asleep\n"
    assert _status(medcell, "far") == "asleep"
    assert ok(medcell("facility", "wake", "far", "--json"))["status"] == "running"
    assert _lifecycle_calls(nodes) == [("10.0.0.2", "far", "sleep"), ("10.0.0.2", "far", "wake")]


def test_rotate_key_wakes_an_asleep_facility_on_its_node_first(medcell, nodes):
    ok(medcell("facility", "create", "far", "--node", "node3", "--json"))
    ok(medcell("facility", "sleep", "far", "--json"))
    result = medcell("facility", "rotate-key", "far", "--json")
    assert result.exit_code == 0, result.output
    assert "waking far to rotate its key" in result.stderr
    asked = [(a, m, args) for a, m, args in nodes.calls if m in ("lifecycle", "manage")]
    assert asked[-2:] == [
        ("10.0.0.3", "lifecycle", ("far", "wake")),
        ("10.0.0.3", "manage", ("far", "rotate-key")),
    ]


def test_a_stopped_facility_is_not_changed_but_told_to_start(medcell, nodes):
    ok(medcell("facility", "create", "far", "--json"))
    ok(medcell("facility", "stop", "far", "--json"))
    assert error(medcell("facility", "set-quota", "far", "1GiB")) == (
        "Error: facility far is stopped; start it first"
    )
    assert not [c for c in nodes.calls if c[1] == "manage" and c[2][1] == "set-quota"]


def test_set_quota_and_receipts_run_on_the_facilitys_node(medcell, nodes):
    ok(medcell("facility", "create", "far", "--node", "node2", "--json"))
    assert ok(medcell("facility", "set-quota", "far", "1GiB", "--json"))["quota"] == "1GiB"
    assert ("10.0.0.2", "manage", ("far", "set-quota", "--facility", "1GiB")) in nodes.calls
    result = medcell("facility", "receipts", "far")
    assert result.exit_code == 0, result.output
    assert "facility far has no deletion receipts" in result.stdout
    assert ("10.0.0.2", "manage", ("far", "receipts")) in nodes.calls


@pytest.mark.parametrize(
    "args",
    [
        ["stop", "gone"],
        ["start", "gone"],
        ["sleep", "gone"],
        ["wake", "gone"],
        ["rotate-key", "gone"],
        ["set-quota", "gone", "1GiB"],
        ["receipts", "gone"],
    ],
)
def test_a_command_on_no_facility_says_so(medcell, nodes, args):
    assert error(medcell("facility", *args)) == "Error: no facility gone"
    assert not [c for c in nodes.calls if c[1] in ("lifecycle", "manage")]


@pytest.mark.parametrize("command", ["stop", "start", "sleep", "wake", "rotate-key", "receipts"])
def test_each_command_waits_for_another_managers_lock(medcell, config, engine, nodes, command):
    ok(medcell("facility", "create", "far", "--json"))
    other = SwarmLocks(config, SwarmConfigs(ConfigClient(engine.configs)), host="node2")
    with other.hold("far"):
        assert "gave up after waiting 0.2 s" in error(medcell("facility", command, "far"))
    assert not [c for c in nodes.calls if c[1] == "lifecycle"]


def test_delete_has_every_ready_manager_forget_its_tombstones(medcell, engine, nodes):
    for name in ("node1", "node2"):
        engine.swarm.nodes_by_name[name].attrs["Spec"]["Role"] = "manager"
    ok(medcell("facility", "create", "far", "--node", "node3", "--json"))
    nodes.down.add("10.0.0.2")
    result = medcell("facility", "delete", "far", "--yes", "--json")
    assert result.exit_code == 0, result.output
    asked = [a for a, m, args in nodes.calls if m == "forget_tombstones" and args == ("far",)]
    assert asked == ["10.0.0.1", "10.0.0.2"]  # the managers; node3 is a worker
    assert "node node2 did not forget the tombstones of far" in result.stderr

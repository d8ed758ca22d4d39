"""The fake engine as a Swarm manager: services, their tasks, nodes and swarm-scoped networks."""

from __future__ import annotations

import copy
import itertools

from tests.provisioner.fakedocker import FakeAPI, FakeDocker, FakeNetworks, api_error

# Listing nodes and services as the replicated fake does (the same label filters).
from tests.provisioner.fakeswarm_replicated import FakeNodes, FakeServices

_ids = itertools.count(1)


class FakeNode:
    def __init__(self, name: str, address: str, state: str = "ready"):
        self.id = f"n-{name}"
        self.attrs = {
            "ID": self.id,
            "Description": {"Hostname": name, "Resources": {"MemoryBytes": 8 * 2**30}},
            "Spec": {"Labels": {"medcell.node": name}, "Availability": "active", "Role": "manager"},
            "Status": {"State": state, "Addr": address},
        }


class FakeSwarmAPI(FakeAPI):
    """The low-level service calls, recorded."""

    def create_service(self, task_template, name=None, labels=None, mode=None, **kwargs) -> dict:
        fake = self.fake
        if name in fake.services_by_name:
            raise api_error(409, f"service {name} already exists")
        call = {"task_template": task_template, "name": name, "labels": labels, "mode": mode}
        call.update(kwargs)
        fake.service_calls.append(("create", copy.deepcopy(call)))
        fake.services_by_name[name] = {
            "ID": f"s{next(_ids)}",
            "Version": {"Index": 1},
            "Spec": {"Name": name, "Labels": dict(labels or {}), "TaskTemplate": task_template},
        }
        return {"ID": fake.services_by_name[name]["ID"]}

    def inspect_service(self, name: str) -> dict:
        if name not in self.fake.services_by_name:
            raise api_error(404, f"service {name} not found")
        return copy.deepcopy(self.fake.services_by_name[name])

    def update_service(self, service_id, version, task_template=None, name=None, **kwargs):
        service = self.fake.services_by_name[name]
        assert service["ID"] == service_id and service["Version"]["Index"] == version
        call = {"task_template": task_template, "name": name, **kwargs}
        self.fake.service_calls.append(("update", copy.deepcopy(call)))
        service["Version"]["Index"] += 1
        service["Spec"]["Labels"] = dict(kwargs.get("labels") or {})

    def remove_service(self, name: str) -> bool:
        if name not in self.fake.services_by_name:
            raise api_error(404, f"service {name} not found")
        del self.fake.services_by_name[name]
        self.fake.service_calls.append(("remove", name))
        return True

    def tasks(self, filters=None) -> list[dict]:
        name = (filters or {}).get("service")
        if name not in self.fake.services_by_name:
            return []
        return [
            {"NodeID": node.id, "Status": {"State": self.fake.task_state.get(node_name, "running")}}
            for node_name, node in self.fake.nodes_by_name.items()
            if node.attrs["Status"]["State"] == "ready"
        ]


class FakeSwarmNetworks(FakeNetworks):
    def create(self, name, driver=None, internal=False, ipam=None, labels=None, **kwargs):
        network = super().create(name, driver, internal, ipam, labels, **kwargs)
        network.scope = kwargs.get("scope", "local")
        network.id = f"id-{name}"
        return network


class FakeSwarm(FakeDocker):
    """A Swarm manager of three ready nodes; `swarm_state` and `manager` as the engine says."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.api = FakeSwarmAPI(self)
        self.networks = FakeSwarmNetworks(self)
        self.nodes = FakeNodes(self)
        self.services = FakeServices(self)
        self.nodes_by_name = {f"node{i}": FakeNode(f"node{i}", f"10.0.0.{i}") for i in (1, 2, 3)}
        self.services_by_name: dict[str, dict] = {}
        self.service_calls: list[tuple] = []
        self.listings: list[list[str]] = []  # the label filters of each service listing
        self.task_state: dict[str, str] = {}  # node -> its tasks' state (default running)
        self.swarm_state = "active"
        self.manager = True

    def info(self) -> dict:
        return {
            "Name": "node1",
            "Swarm": {
                "LocalNodeState": self.swarm_state,
                "ControlAvailable": self.manager,
                "NodeID": "n-node1",
            },
        }

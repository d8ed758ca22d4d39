"""A fake Swarm manager for replicated facility services: the calls medcell makes on them.

A service at one replica gets a task on the node its constraint names; at zero its task ends.
Tests hook `on_start` / `on_stop` (a facility process behind the task) and script a rejection.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

from tests.provisioner.fakedocker import api_error

_ids = itertools.count(1)
GiB = 2**30


class FakeNode:
    def __init__(self, name: str, memory: int, state: str, availability: str):
        self.id = f"n{next(_ids)}-{name}"
        self.attrs = {
            "ID": self.id,
            "Description": {"Hostname": name, "Resources": {"MemoryBytes": memory}},
            "Spec": {"Labels": {"medcell.node": name}, "Availability": availability},
            "Status": {"State": state, "Addr": f"10.0.0.{len(name)}"},
        }

    def update(self, spec: dict) -> None:
        """A node's spec replaced (labels, availability), as the engine's node update does."""
        self.attrs["Spec"] = spec


class FakeNodes:
    def __init__(self, fake: FakeSwarm):
        self.fake = fake

    def list(self, **_) -> list[FakeNode]:
        return list(self.fake.nodes_by_name.values())

    def get(self, node_id: str) -> FakeNode:
        return next(n for n in self.fake.nodes_by_name.values() if n.id == node_id)


class FakeListedService:
    def __init__(self, attrs: dict):
        self.attrs = attrs


class FakeServices:
    def __init__(self, fake: FakeSwarm):
        self.fake = fake

    def list(self, filters=None) -> list[FakeListedService]:
        wanted = (filters or {}).get("label") or []
        wanted = [wanted] if isinstance(wanted, str) else wanted
        self.fake.listings.append(list(wanted))
        return [
            FakeListedService(copy.deepcopy(s))
            for s in self.fake.services_by_name.values()
            if all(_labelled(s["Spec"].get("Labels") or {}, w) for w in wanted)
        ]


def _labelled(labels: dict, wanted: str) -> bool:
    """The engine's label filter: a key, or key=value."""
    key, has_value, value = wanted.partition("=")
    return key in labels and (not has_value or labels[key] == value)


class FakeSwarmAPI:
    def __init__(self, fake: FakeSwarm):
        self.fake = fake

    def create_service(self, task_template, name=None, labels=None, mode=None, update_config=None):
        if name in self.fake.services_by_name:
            raise api_error(409, f"rpc error: code = AlreadyExists desc = name conflicts: {name}")
        spec = {
            "Name": name,
            "Labels": labels or {},
            "TaskTemplate": copy.deepcopy(task_template),
            "Mode": copy.deepcopy(mode),
            "UpdateConfig": update_config,
        }
        service = {"ID": f"s{next(_ids)}", "Version": {"Index": 1}, "Spec": spec}
        self.fake.services_by_name[name] = service
        self.fake.tasks_by_service[name] = []
        self.fake.created.append(copy.deepcopy(spec))
        self.fake.reconcile(name)
        return {"ID": service["ID"]}

    def inspect_service(self, service: str) -> dict:
        return copy.deepcopy(self.fake.service(service))

    def update_service(self, service, version, task_template=None, name=None, labels=None,
                       mode=None, update_config=None, rollback_config=None,
                       endpoint_spec=None, **_):  # fmt: skip
        current = self.fake.service(service)
        if version != current["Version"]["Index"]:
            raise api_error(500, "rpc error: update out of sequence")
        current["Spec"] = {
            "Name": name,
            "Labels": labels,
            "TaskTemplate": copy.deepcopy(task_template),
            "Mode": copy.deepcopy(mode),
            "UpdateConfig": update_config,
            "RollbackConfig": rollback_config,
            "EndpointSpec": endpoint_spec,
        }
        current["Version"]["Index"] += 1
        self.fake.updates.append((name, copy.deepcopy(mode)))
        self.fake.reconcile(name)
        return {}

    def remove_service(self, service: str) -> bool:
        name = self.fake.service(service)["Spec"]["Name"]
        for task in self.fake.tasks_by_service.pop(name, []):
            self.fake.end(name, task)
        del self.fake.services_by_name[name]
        return True

    def tasks(self, filters=None) -> list[dict]:
        name = (filters or {}).get("service")
        if name not in self.fake.tasks_by_service:
            return []
        return copy.deepcopy(self.fake.tasks_by_service[name])


class FakeSwarm:
    """Stands in for a manager's `docker.DockerClient` in cluster mode."""

    def __init__(self):
        self.nodes_by_name: dict[str, FakeNode] = {}
        self.services_by_name: dict[str, dict] = {}
        self.tasks_by_service: dict[str, list[dict]] = {}
        self.nodes = FakeNodes(self)
        self.services = FakeServices(self)
        self.api = FakeSwarmAPI(self)
        self.created: list[dict] = []
        self.updates: list[tuple[str, dict]] = []
        self.listings: list[list[str]] = []  # the label filters of each service listing
        self.on_start: Callable[[str], None] = lambda name: None
        self.on_stop: Callable[[str], None] = lambda name: None
        self.reject: str | None = None  # set: a new task is rejected with this error

    def add_node(self, name: str, memory: int = 8 * GiB, state="ready", availability="active"):
        node = self.nodes_by_name[name] = FakeNode(name, memory, state, availability)
        return node

    def service(self, ref: str) -> dict:
        for service in self.services_by_name.values():
            if ref in (service["ID"], service["Spec"]["Name"]):
                return service
        raise api_error(404, f"service {ref} not found")

    def _node_of(self, name: str) -> str:
        constraints = self.services_by_name[name]["Spec"]["TaskTemplate"]["Placement"]
        pinned = constraints["Constraints"][0].split("==", 1)[1]
        return self.nodes_by_name[pinned].id

    def reconcile(self, name: str) -> None:
        replicas = self.services_by_name[name]["Spec"]["Mode"]["Replicated"]["Replicas"]
        tasks = self.tasks_by_service[name]
        live = [t for t in tasks if t["DesiredState"] == "running"]
        if replicas == 0:
            for task in live:
                self.end(name, task)
        elif not live:
            task = {
                "ID": f"t{next(_ids)}",
                "NodeID": self._node_of(name),
                "DesiredState": "running",
                "Status": {
                    "State": "running",
                    "ContainerStatus": {"ContainerID": f"c{next(_ids)}"},
                },
            }
            if self.reject is not None:
                task["DesiredState"] = "shutdown"
                task["Status"] = {"State": "rejected", "Err": self.reject}
            tasks.append(task)
            if self.reject is None:
                self.on_start(name)

    def end(self, name: str, task: dict) -> None:
        was_running = task["Status"]["State"] == "running"
        task["DesiredState"] = "shutdown"
        task["Status"] = {"State": "shutdown"}
        if was_running:
            self.on_stop(name)

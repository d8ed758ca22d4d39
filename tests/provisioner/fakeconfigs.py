"""The Swarm's config objects as a manager's engine serves them (docker-py's low-level calls),
in memory and thread-safe: one store shared by several fake managers is one Raft store."""

from __future__ import annotations

import base64
import itertools
import json
import threading

from tests.provisioner.fakedocker import api_error

_ids = itertools.count(1)


class _Response:
    def __init__(self, status: int):
        self.status_code = status


class ConfigStore:
    """Every config of the cluster: name -> {"ID", "Version", "Spec"}."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_name: dict[str, dict] = {}
        self.creates = 0  # attempts, won or lost

    def find(self, ref: str) -> dict | None:
        return self.by_name.get(ref) or next(
            (c for c in self.by_name.values() if c["ID"] == ref), None
        )


class FakeConfigAPI:
    """create_config, inspect_config, remove_config and the update the lock renews with."""

    def __init__(self, store: ConfigStore):
        self.store = store

    def create_config(self, name, data, labels=None, templating=None) -> dict:
        with self.store.lock:
            self.store.creates += 1
            if name in self.store.by_name:
                raise api_error(409, f"rpc error: config {name} already exists")
            entry = {
                "ID": f"cfg{next(_ids)}",
                "Version": {"Index": 1},
                "Spec": {
                    "Name": name,
                    "Labels": dict(labels or {}),
                    "Data": base64.b64encode(data).decode(),
                },
            }
            self.store.by_name[name] = entry
            return {"ID": entry["ID"]}

    def inspect_config(self, ref) -> dict:
        with self.store.lock:
            found = self.store.find(ref)
            if found is None:
                raise api_error(404, f"config {ref} not found")
            return json.loads(json.dumps(found))

    def remove_config(self, ref) -> bool:
        with self.store.lock:
            found = self.store.find(ref)
            if found is None:
                raise api_error(404, f"config {ref} not found")
            del self.store.by_name[found["Spec"]["Name"]]
            return True

    # the raw update (docker-py has no call of its own for it)

    def _url(self, path: str, *args) -> str:
        return path.format(*args)

    def _post_json(self, url: str, params=None, data=None) -> _Response:
        config_id = url.split("/")[2]
        with self.store.lock:
            found = self.store.find(config_id)
            if found is None:
                return _Response(404)
            if params["version"] != found["Version"]["Index"]:
                return _Response(500)  # "update out of sequence"
            if data["Name"] != found["Spec"]["Name"] or data["Data"] != found["Spec"]["Data"]:
                return _Response(400)  # only the labels of a config can change
            found["Spec"]["Labels"] = dict(data["Labels"])
            found["Version"]["Index"] += 1
            return _Response(200)

    def _raise_for_status(self, response: _Response) -> None:
        if response.status_code >= 400:
            raise api_error(response.status_code, "update refused")


class ConfigClient:
    """Just enough of a docker-py client for host/swarm.py's SwarmConfigs."""

    def __init__(self, store: ConfigStore):
        self.api = FakeConfigAPI(store)

"""A fake docker-py client with just the calls the provisioner makes, in memory, no engine."""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections import namedtuple
from dataclasses import dataclass

import docker.errors
import requests

ExecResult = namedtuple("ExecResult", "exit_code output")
_ids = itertools.count(1)


def api_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls(message, response=response, explanation=message)


def _matches(labels: dict, filters: dict | None) -> bool:
    for wanted in (filters or {}).get("label", []):
        key, _, value = wanted.partition("=")
        if key not in labels or ("=" in wanted and labels[key] != value):
            return False
    return True


class FakeImage:
    def __init__(self, ref: str, image_id: str | None = None, labels: dict | None = None):
        self.id = image_id or f"sha256:{abs(hash(ref)):x}"
        self.labels = labels or {}


class FakeImages:
    def __init__(self, fake: FakeDocker):
        self.fake = fake

    def get(self, ref: str) -> FakeImage:
        if ref not in self.fake.images_present:
            raise api_error(404, f"No such image: {ref}")
        return FakeImage(ref, self.fake.image_ids.get(ref), self.fake.image_labels.get(ref))


class FakeContainer:
    def __init__(self, fake: FakeDocker, image: str, command, kwargs: dict):
        self.fake = fake
        self.id = f"c{next(_ids)}"
        self.name = kwargs["name"]
        self.image = image
        self.command = command
        self.kwargs = kwargs
        self.status = "created"
        self.health: str | None = None
        self.exit_code = 0
        self.restart_count = 0
        self.healthcheck: dict | None = None
        self.networks = {kwargs["network"]} if kwargs.get("network") else set()
        self.stdin = b""  # what was written to its standard input (attach_socket)

    @property
    def labels(self) -> dict:
        return self.kwargs.get("labels", {})

    @property
    def attrs(self) -> dict:
        state = {"Status": self.status, "ExitCode": self.exit_code}
        if self.health:
            state["Health"] = {"Status": self.health}
        return {
            "Name": f"/{self.name}",
            "State": state,
            "RestartCount": self.restart_count,
            "Config": {
                "Labels": self.labels,
                "Env": self.kwargs.get("environment", {}),
                "Healthcheck": self.healthcheck,
            },
            "NetworkSettings": {"Networks": {n: {} for n in sorted(self.networks)}},
        }

    @property
    def list_attrs(self) -> dict:
        """What the engine's list API (sparse) says about the container."""
        summary = {"running": "Up 2 minutes", "created": "Created"}.get(
            self.status, f"Exited ({self.exit_code}) 1 minute ago"
        )
        if self.status == "running" and self.health:
            summary += " (health: starting)" if self.health == "starting" else f" ({self.health})"
        networks = {n: {} for n in sorted(self.networks)} or {"none": {}}
        return {
            "Names": [f"/{self.name}"],
            "State": self.status,
            "Status": summary,
            "Labels": self.labels,
            "NetworkSettings": {"Networks": networks},
        }

    def reload(self) -> None:
        pass

    def start(self) -> None:
        self.fake.fail("start", self)
        for network in self.networks:
            if network not in self.fake.networks_by_name:
                raise api_error(404, f"network {network} not found")
        self.status = "running"
        self.health = self.fake.health_on_start
        self.fake.started.append(self.name)

    def stop(self, timeout: int = 10) -> None:
        self.status = "exited"
        self.health = None

    def remove(self, force: bool = False) -> None:
        if self.status == "running" and not force:
            raise api_error(409, "container is running")
        self.fake.containers_by_name.pop(self.name, None)
        for network in self.fake.networks_by_name.values():
            network.members.discard(self.name)

    def exec_run(self, cmd: list[str], demux: bool = False) -> ExecResult:
        if self.status != "running":
            raise api_error(409, f"Container {self.name} is not running")
        self.fake.execs.append((self.name, list(cmd)))
        code, out, err = self.fake.exec_handler(self, list(cmd))
        return ExecResult(code, (out.encode() or None, err.encode() or None))

    def wait(self, timeout: float | None = None) -> dict:
        code, out, err = self.fake.exec_handler(self, list(self.command or []))
        self.exit_code, self._logs = code, (out, err)
        self.status = "exited"
        return {"StatusCode": code}

    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False):
        out, err = getattr(self, "_logs", ("", ""))
        data = ((out if stdout else "") + (err if stderr else "")).encode()
        if not stream:
            return data
        return iter([data[i : i + 4096] for i in range(0, len(data), 4096)])


@dataclass
class Listed:
    attrs: dict


class FakeContainers:
    def __init__(self, fake: FakeDocker):
        self.fake = fake

    def get(self, name: str) -> FakeContainer:
        self.fake.inspects += 1
        try:
            return self.fake.containers_by_name[name]
        except KeyError:
            raise api_error(404, f"No such container: {name}") from None

    def list(self, all=False, filters=None, ignore_removed=False, sparse=False, **_):
        self.fake.lists += 1
        found = self.fake.containers_by_name.values()
        found = [c for c in found if _matches(c.labels, filters) and (all or c.status == "running")]
        return [Listed(c.list_attrs) for c in found] if sparse else found

    def create(self, image: str, command=None, **kwargs) -> FakeContainer:
        self.fake.fail("create_container", kwargs)
        if kwargs["name"] in self.fake.containers_by_name:
            raise api_error(409, f'Conflict. The container name "/{kwargs["name"]}" is in use')
        if image not in self.fake.images_present:
            raise api_error(404, f"No such image: {image}")
        for name in kwargs.get("volumes", {}):
            if not name.startswith("/") and name not in self.fake.volumes_by_name:
                self.fake.volumes.create(name=name, labels={})  # Docker makes missing volumes
        container = FakeContainer(self.fake, image, command, kwargs)
        self.fake.containers_by_name[container.name] = container
        if kwargs.get("network"):
            self.fake.networks_by_name[kwargs["network"]].members.add(container.name)
        self.fake.created.append(kwargs)
        return container


class FakeVolume:
    def __init__(self, fake: FakeDocker, name: str, labels: dict):
        self.fake, self.name = fake, name
        self.attrs = {"Name": name, "Labels": labels}
        self.files: dict[str, str] = {}

    def remove(self, force: bool = False) -> None:
        for c in self.fake.containers_by_name.values():
            if self.name in c.kwargs.get("volumes", {}):
                raise api_error(409, f"remove {self.name}: volume is in use")
        del self.fake.volumes_by_name[self.name]


class FakeVolumes:
    def __init__(self, fake: FakeDocker):
        self.fake = fake

    def get(self, name: str) -> FakeVolume:
        try:
            return self.fake.volumes_by_name[name]
        except KeyError:
            raise api_error(404, f"get {name}: no such volume") from None

    def list(self, filters=None):
        return [
            v for v in self.fake.volumes_by_name.values() if _matches(v.attrs["Labels"], filters)
        ]

    def create(self, name: str, labels: dict | None = None) -> FakeVolume:
        # Like Docker, creating an existing volume returns it unchanged.
        return self.fake.volumes_by_name.setdefault(name, FakeVolume(self.fake, name, labels or {}))


class FakeNetwork:
    def __init__(self, fake: FakeDocker, name: str, subnet: str, labels: dict, internal: bool):
        self.fake, self.name, self.internal = fake, name, internal
        self.subnet, self.labels = subnet, labels
        self.members: set[str] = set()
        self.options: dict[str, str] = {}  # the bridge driver's
        self.attrs = {"Name": name, "Labels": labels, "IPAM": {"Config": [{"Subnet": subnet}]}}

    def connect(self, container: str) -> None:
        c = self.fake.containers.get(container)
        if container in self.members:
            raise api_error(403, f"endpoint with name {container} already exists in network")
        self.members.add(container)
        c.networks.add(self.name)

    def disconnect(self, container: str, force: bool = False) -> None:
        c = self.fake.containers.get(container)
        if container not in self.members:
            raise api_error(403, f"container {container} is not connected to network {self.name}")
        self.members.discard(container)
        c.networks.discard(self.name)

    def remove(self) -> None:
        running = [m for m in self.members if self.fake.containers_by_name[m].status == "running"]
        if running:
            raise api_error(403, f"error while removing network: {self.name} has active endpoints")
        for member in self.members:
            self.fake.containers_by_name[member].networks.discard(self.name)
        del self.fake.networks_by_name[self.name]


class FakeNetworks:
    def __init__(self, fake: FakeDocker):
        self.fake = fake

    def get(self, name: str) -> FakeNetwork:
        try:
            return self.fake.networks_by_name[name]
        except KeyError:
            raise api_error(404, f"network {name} not found") from None

    def list(self, filters=None, **_):
        return [n for n in self.fake.networks_by_name.values() if _matches(n.labels, filters)]

    def create(self, name, driver=None, internal=False, ipam=None, labels=None, **kwargs):
        self.fake.fail("create_network", name)
        if kwargs.get("check_duplicate") and name in self.fake.networks_by_name:
            raise api_error(409, f"network with name {name} already exists")
        subnet = ipam["Config"][0]["Subnet"]
        wanted = ipaddress.ip_network(subnet)
        for other in self.fake.networks_by_name.values():
            if wanted.overlaps(ipaddress.ip_network(other.subnet)):
                raise api_error(403, "Pool overlaps with other one on this address space")
        network = FakeNetwork(self.fake, name, subnet, labels or {}, internal)
        network.options = dict(kwargs.get("options") or {})
        self.fake.networks_by_name[name] = network
        return network


def _chunks(out: str | bytes, err: str | bytes):
    """(stdout, stderr) pieces of 64 KiB, as `exec_start(stream=True, demux=True)` yields them."""
    out = out.encode() if isinstance(out, str) else out
    err = err.encode() if isinstance(err, str) else err
    step = 65536
    for i in range(0, len(out), step):
        yield out[i : i + step], None
    for i in range(0, len(err), step):
        yield None, err[i : i + step]


class FakeStdin:
    """The socket attach_socket hands back: what is sent becomes the container's stdin."""

    def __init__(self, container: FakeContainer):
        self.container = container
        self.closed = False

    def sendall(self, data: bytes) -> None:
        self.container.stdin += data

    def close(self) -> None:
        self.closed = True


class FakeAPI:
    """The low-level client (`client.api`), for the calls made on it: start, stdin and exec."""

    def __init__(self, fake: FakeDocker):
        self.fake = fake
        self.exec_results: dict[str, tuple[str, list[str]]] = {}
        self.exec_codes: dict[str, int | None] = {}

    def start(self, container: str) -> None:
        """`docker start` by name (one call, no inspect before it)."""
        c = self.fake.containers_by_name.get(container)
        if c is None:
            raise api_error(404, f"No such container: {container}")
        c.start()

    def exec_create(self, container: str, cmd: list[str], stdout=True, stderr=True) -> dict:
        c = self.fake.containers_by_name.get(container)
        if c is None:
            raise api_error(404, f"No such container: {container}")
        if c.status != "running":
            raise api_error(409, f"Container {container} is not running")
        exec_id = f"exec{next(_ids)}"
        self.exec_results[exec_id] = (container, list(cmd))
        return {"Id": exec_id}

    def exec_start(self, exec_id: str, stream: bool = False, demux: bool = False):
        """Runs the scripted command; its output comes as (stdout, stderr) chunks, as Docker's."""
        name, cmd = self.exec_results[exec_id]
        container = self.fake.containers_by_name[name]
        self.fake.execs.append((name, cmd))
        code, out, err = self.fake.exec_handler(container, cmd)
        self.exec_codes[exec_id] = code
        return _chunks(out, err)

    def exec_inspect(self, exec_id: str) -> dict:
        return {"ExitCode": self.exec_codes.get(exec_id)}

    def attach_socket(self, container_id: str, params: dict | None = None) -> FakeStdin:
        for container in self.fake.containers_by_name.values():
            if container.id == container_id:
                return FakeStdin(container)
        raise api_error(404, f"No such container: {container_id}")


class FakeDocker:
    """Stands in for `docker.DockerClient`; tests script health, exec results and failures."""

    def __init__(
        self,
        images=("medcell-facility:latest", "medcell-gateway:latest", "medcell-supervisor:latest"),
    ):
        self.images_present = set(images)
        self.image_ids: dict[str, str] = {}  # set one to simulate a rebuilt image
        self.image_labels: dict[str, dict] = {}  # ref -> the image's labels
        self.containers_by_name: dict[str, FakeContainer] = {}
        self.volumes_by_name: dict[str, FakeVolume] = {}
        self.networks_by_name: dict[str, FakeNetwork] = {}
        self.images = FakeImages(self)
        self.containers = FakeContainers(self)
        self.volumes = FakeVolumes(self)
        self.networks = FakeNetworks(self)
        self.api = FakeAPI(self)
        self.health_on_start: str | None = "healthy"
        self.failures: dict[str, Exception] = {}
        self.created: list[dict] = []
        self.started: list[str] = []
        self.execs: list[tuple[str, list[str]]] = []
        self.passwords: list[str] = []
        self.shredded: list[str] = []
        # Quotas each fake facility app holds (container name -> set-quota's options).
        self.quotas: dict[str, dict[str, str]] = {}
        self.exec_handler = self.facility_app
        self.inspects = 0  # containers.get calls
        self.lists = 0  # containers.list calls
        # What facilities answer on their sockets: slug -> FacilityStatus (see conftest).
        self.socket_status: dict = {}

    def answers_on_socket(self, container: str) -> bool:
        """A facility's app answers once its container runs, unless a test says it is sick."""
        c = self.containers_by_name.get(container)
        return c is not None and c.status == "running" and c.health in ("healthy", None)

    def fail(self, step: str, subject) -> None:
        if step in self.failures:
            raise self.failures[step]

    def facility_app(self, container: FakeContainer, cmd: list[str]) -> tuple[int, str, str]:
        """What services.facility's management commands print."""
        if cmd[:3] != ["python", "-m", "services.facility"]:
            return 127, "", "Error: unknown command"
        command = cmd[3]
        keys = container.kwargs["volumes"]
        keys_volume = next(v for v, m in keys.items() if m["bind"] == "/keys")
        if command == "create-admin":
            password = f"pw-{next(_ids)}-secret"
            self.passwords.append(password)
            return (
                0,
                json.dumps({"username": cmd[cmd.index("--username") + 1], "password": password}),
                "",
            )
        if command == "rotate-key":
            return 0, json.dumps({"version": 2, "rewrapped": 3, "destroyed": 0}), ""
        if command == "shred-keys":
            self.shredded.append(keys_volume)
            return 0, json.dumps({"destroyed": 1}), ""
        if command in ("set-quota", "usage"):
            held = self.quotas.setdefault(
                container.name, {"--facility": "2GiB", "--conversation": "200MiB"}
            )
            held.update(dict(zip(cmd[4::2], cmd[5::2], strict=True)))
            report = {
                "quota": held["--facility"],
                "conversation_quota": held["--conversation"],
                "used_bytes": 1048576,
                "quota_bytes": 0,
                "used_percent": 0.1,
            }
            return 0, json.dumps(report), ""
        return 2, "", f"Error: no command {command}"

    def names(self) -> set[str]:
        """Every object name the fake engine holds."""
        return set(self.containers_by_name) | set(self.volumes_by_name) | set(self.networks_by_name)

"""The only module that talks to the Docker Engine: plain data and our own errors come out of it."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import docker
import docker.errors
import requests.exceptions

from provisioner.host.errors import (
    Conflict,
    DockerError,
    DockerUnavailable,
    NotFound,
    OutputRefused,
    SubnetTaken,
)

# Every container medcell starts gets these, so no code path can start one unhardened.
TMPFS = {"/tmp": "size=64m,mode=1777,noexec,nosuid,nodev"}
CAP_DROP = ["ALL"]
SECURITY_OPT = ["no-new-privileges:true"]


# What a command in a facility's container may print: one JSON object (a facility's receipts are
# the largest, ~1 KiB each), and of its stderr only the end is kept (the last line is the error).
OUTPUT_BYTES = 16 * 1024 * 1024
ERROR_BYTES = 64 * 1024
EXEC_SECONDS = 600.0  # a wipe or a key rotation of a large facility, with room to spare


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container."""

    memory: str = "256m"
    cpus: float = 1.0
    pids: int = 128


@dataclass(frozen=True)
class ContainerSpec:
    """What to create; hardening is added by the backend, not chosen here."""

    name: str
    image: str
    user: str
    labels: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    network: str | None = None  # None: no network at all
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> mount point
    binds: dict[str, str] = field(default_factory=dict)  # host dir -> mount point, read-only
    rw_binds: dict[str, str] = field(default_factory=dict)  # host path -> mount point, writable
    group_add: tuple[str, ...] = ()  # extra groups (the Docker socket's gid for the supervisor)
    ports: dict[int, int] = field(default_factory=dict)  # container port -> host port
    bind_address: str = ""
    command: list[str] | None = None
    limits: Limits = field(default_factory=Limits)
    # Long-running containers survive engine restarts; one-off ones (None) never restart.
    restart: str | None = "unless-stopped"
    healthcheck: bool = True  # False: switch off the image's HEALTHCHECK
    stdin_open: bool = False  # one-off containers that are handed a secret on stdin
    # A seccomp profile of its own (JSON, as Docker's API takes it); "" keeps Docker's default.
    seccomp: str = field(default="", repr=False)


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    status: str  # Docker's: created, running, restarting, exited, paused, dead
    health: str | None  # starting, healthy, unhealthy, or None without a health check
    labels: dict[str, str]
    networks: tuple[str, ...]
    exit_code: int
    restart_count: int
    health_test: tuple[str, ...] = ()  # the image's health check as an exec command


@dataclass(frozen=True)
class EngineInfo:
    name: str  # the engine's host name: in a cluster, the Swarm node's name
    memory: int  # the host's memory in bytes


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    labels: dict[str, str]
    subnets: tuple[str, ...]


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate docker-py's errors into ours where they enter (the local engine's calls and
    Swarm's alike)."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise NotFound(f"{action}: {_explain(e)}") from e
    except docker.errors.APIError as e:
        message = _explain(e)
        if "overlaps" in message:
            raise SubnetTaken(f"{action}: {message}") from e
        if e.status_code == 409 or "already exists" in message:
            raise Conflict(f"{action}: {message}") from e
        raise DockerError(f"{action}: {message}") from e
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        raise DockerUnavailable(f"{action}: no Docker Engine answers ({e})") from e
    except requests.exceptions.Timeout as e:
        raise DockerError(f"{action}: timed out") from e


def _explain(e: docker.errors.DockerException) -> str:
    explanation = getattr(e, "explanation", None)
    return str(explanation or e).replace("\n", " ")


def _container_info(container) -> ContainerInfo:
    attrs = container.attrs
    state = attrs.get("State", {})
    health = state.get("Health", {}).get("Status") or None
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    test = (attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or []
    if test[:1] == ["CMD"]:
        test = test[1:]
    elif test[:1] == ["CMD-SHELL"]:
        test = ["/bin/sh", "-c", *test[1:]]
    else:
        test = []
    return ContainerInfo(
        name=attrs.get("Name", "").lstrip("/") or container.name,
        status=state.get("Status", "unknown"),
        health=health,
        labels=dict(attrs.get("Config", {}).get("Labels") or {}),
        networks=tuple(sorted(n for n in networks if n != "none")),
        exit_code=int(state.get("ExitCode") or 0),
        restart_count=int(attrs.get("RestartCount") or 0),
        health_test=tuple(test),
    )


_HEALTH_IN_STATUS = {
    "(healthy)": "healthy",
    "(unhealthy)": "unhealthy",
    "(health: starting)": "starting",
}


def _listed_info(attrs: dict) -> ContainerInfo:
    """A ContainerInfo from the list API's summary ("Up 3 minutes (healthy)", "Exited (137) …")."""
    summary = attrs.get("Status") or ""
    health = next((h for text, h in _HEALTH_IN_STATUS.items() if summary.endswith(text)), None)
    exit_code = 0
    if summary.startswith("Exited ("):
        code = summary[len("Exited (") :].split(")", 1)[0]
        exit_code = int(code) if code.lstrip("-").isdigit() else 0
    names = attrs.get("Names") or [""]
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return ContainerInfo(
        name=names[0].lstrip("/"),
        status=attrs.get("State") or "unknown",
        health=health,
        labels=dict(attrs.get("Labels") or {}),
        networks=tuple(sorted(n for n in networks if n != "none")),
        exit_code=exit_code,
        restart_count=0,
    )


def _network_info(network) -> NetworkInfo:
    attrs = network.attrs
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    subnets = tuple(c["Subnet"] for c in configs if c.get("Subnet"))
    return NetworkInfo(network.name, dict(attrs.get("Labels") or {}), subnets)


def _label_filter(labels: dict[str, str | None]) -> dict[str, list[str]]:
    return {"label": [k if v is None else f"{k}={v}" for k, v in labels.items()]}


class DockerBackend:
    """Engine calls medcell needs, over a docker-py client (a fake one in unit tests)."""

    def __init__(self, client=None):
        self._client = client

    @property
    def client(self):
        # Connect lazily so `--help` and validation errors need no engine.
        if self._client is None:
            with engine_errors("connecting to Docker"):
                self._client = docker.from_env()
        return self._client

    def engine(self) -> EngineInfo:
        """This engine's host name and memory."""
        with engine_errors("reading the engine's information"):
            info = self.client.info()
        memory = info.get("MemTotal")
        return EngineInfo(
            name=str(info.get("Name") or ""),
            memory=memory if isinstance(memory, int) and not isinstance(memory, bool) else 0,
        )

    # images

    def image_id(self, ref: str) -> str | None:
        """The image's ID, or None if the engine does not have it."""
        try:
            with engine_errors(f"inspecting image {ref}"):
                return self.client.images.get(ref).id
        except NotFound:
            return None

    def image_labels(self, ref: str) -> dict[str, str]:
        """The image's labels ({} if the engine does not have it)."""
        try:
            with engine_errors(f"inspecting image {ref}"):
                return dict(self.client.images.get(ref).labels or {})
        except NotFound:
            return {}

    # containers

    def container(self, name: str) -> ContainerInfo | None:
        try:
            with engine_errors(f"inspecting container {name}"):
                return _container_info(self.client.containers.get(name))
        except NotFound:
            return None

    def containers(self, labels: dict[str, str | None]) -> list[ContainerInfo]:
        """Containers with these labels, from one list call (no inspect per container).

        The list API has no restart count or health-check command: those stay 0 and ().
        """
        with engine_errors("listing containers"):
            found = self.client.containers.list(
                all=True, filters=_label_filter(labels), sparse=True, ignore_removed=True
            )
            return [_listed_info(c.attrs) for c in found]

    def create_container(self, spec: ContainerSpec) -> None:
        """Create (not start) a hardened container."""
        with engine_errors(f"creating container {spec.name}"):
            self.client.containers.create(spec.image, spec.command, **_create_kwargs(spec))

    def start(self, name: str) -> None:
        # By name in one call: no inspect first (a wake costs the engine one call less).
        with engine_errors(f"starting container {name}"):
            self.client.api.start(name)

    def stop(self, name: str, timeout: int = 10) -> None:
        with engine_errors(f"stopping container {name}"):
            self.client.containers.get(name).stop(timeout=timeout)

    def remove_container(self, name: str) -> None:
        """Force-remove a container; a missing one is fine."""
        try:
            with engine_errors(f"removing container {name}"):
                self.client.containers.get(name).remove(force=True)
        except NotFound:
            pass

    def exec(
        self, name: str, command: list[str], timeout: float = EXEC_SECONDS
    ) -> tuple[int, str, str]:
        """Run a command in a running container: (exit code, stdout, stderr).

        A facility's container may be hostile, and so may what runs in it: its output is read up
        to OUTPUT_BYTES (stderr: its last ERROR_BYTES) and for at most `timeout` seconds.
        """
        with engine_errors(f"running a command in {name}"):
            exec_id = self.client.api.exec_create(name, command, stdout=True, stderr=True)["Id"]
            chunks = self.client.api.exec_start(exec_id, stream=True, demux=True)
            out, err = _bounded(chunks, name, timeout)
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        if not isinstance(code, int) or isinstance(code, bool):
            raise OutputRefused(f"the command in {name} did not finish")
        return code, _text(out), _text(err)

    def run_once(
        self, spec: ContainerSpec, timeout: float = 120, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        """Run a hardened one-off container to completion and remove it.

        `stdin` is written to the container's standard input (the way to hand it a secret: it
        is then in no argument, variable, label or log); the spec must have stdin_open.
        """
        self.create_container(spec)
        try:
            with engine_errors(f"running one-off container {spec.name}"):
                container = self.client.containers.get(spec.name)
                if stdin is not None:
                    sock = self.client.api.attach_socket(
                        container.id, params={"stdin": 1, "stream": 1}
                    )
                container.start()
                if stdin is not None:
                    _send_and_close(sock, stdin)
                deadline = time.monotonic() + timeout
                status = container.wait(timeout=timeout)
                left = max(deadline - time.monotonic(), 1.0)
                out, _ = _bounded(
                    ((c, None) for c in container.logs(stdout=True, stderr=False, stream=True)),
                    spec.name,
                    left,
                )
                _, err = _bounded(
                    ((None, c) for c in container.logs(stdout=False, stderr=True, stream=True)),
                    spec.name,
                    left,
                )
            code = status.get("StatusCode", 1) if isinstance(status, dict) else 1
            return (code if isinstance(code, int) else 1), _text(out), _text(err)
        finally:
            self.remove_container(spec.name)

    # volumes

    def volume(self, name: str) -> VolumeInfo | None:
        try:
            with engine_errors(f"inspecting volume {name}"):
                volume = self.client.volumes.get(name)
        except NotFound:
            return None
        return VolumeInfo(volume.name, dict(volume.attrs.get("Labels") or {}))

    def volumes(self, labels: dict[str, str | None]) -> list[VolumeInfo]:
        with engine_errors("listing volumes"):
            found = self.client.volumes.list(filters=_label_filter(labels))
        return [VolumeInfo(v.name, dict(v.attrs.get("Labels") or {})) for v in found]

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        with engine_errors(f"creating volume {name}"):
            self.client.volumes.create(name=name, labels=labels)

    def remove_volume(self, name: str) -> None:
        """Remove a volume; a missing one is fine.  Retries while a removed container lets go."""
        for attempt in range(20):
            try:
                with engine_errors(f"removing volume {name}"):
                    self.client.volumes.get(name).remove(force=True)
                return
            except NotFound:
                return
            except Conflict:
                if attempt == 19:
                    raise
                time.sleep(0.25)

    # networks

    def network(self, name: str) -> NetworkInfo | None:
        try:
            with engine_errors(f"inspecting network {name}"):
                return _network_info(self.client.networks.get(name))
        except NotFound:
            return None

    def networks(self, labels: dict[str, str | None] | None = None) -> list[NetworkInfo]:
        filters = _label_filter(labels) if labels else None
        with engine_errors("listing networks"):
            return [_network_info(n) for n in self.client.networks.list(filters=filters)]

    def create_network(
        self,
        name: str,
        subnet: str,
        labels: dict[str, str],
        internal: bool,
        options: dict[str, str] | None = None,
    ) -> None:
        """Create a bridge network on an explicit subnet; name clashes raise Conflict.

        `options`: the bridge driver's (e.g. no IP masquerade: no route out).
        """
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        with engine_errors(f"creating network {name}"):
            self.client.networks.create(
                name,
                driver="bridge",
                internal=internal,
                ipam=ipam,
                labels=labels,
                options=options or None,
                check_duplicate=True,
            )

    def create_pooled_network(
        self,
        name: str,
        pool: str,
        labels: dict[str, str],
        internal: bool,
        options: dict[str, str] | None = None,
    ) -> str:
        """Create a network on the pool's first free /28 and return that subnet."""
        tried: list[str] = []
        for _ in range(16):
            taken = [s for n in self.networks() for s in n.subnets]
            subnet = free_subnet(pool, taken + tried)
            try:
                self.create_network(name, subnet, labels, internal, options)
                return subnet
            except SubnetTaken:
                tried.append(subnet)  # another process took it between our look and our create
        raise DockerError(f"could not find a free subnet for {name} in {pool}")

    def remove_network(self, name: str) -> None:
        """Remove a network; a missing one is fine."""
        try:
            with engine_errors(f"removing network {name}"):
                self.client.networks.get(name).remove()
        except NotFound:
            pass


def _send_and_close(sock, data: bytes) -> None:
    # docker-py hands back the raw socket, or a SocketIO wrapping it (unix sockets).
    raw = getattr(sock, "_sock", sock)
    try:
        raw.sendall(data)
    finally:
        sock.close()


def _bounded(
    chunks: Iterable[tuple[bytes | None, bytes | None]], name: str, timeout: float
) -> tuple[bytes, bytes]:
    """Read (stdout, stderr) chunks: all of stdout up to OUTPUT_BYTES, the end of stderr.

    More stdout than that, or a stream still running after `timeout` seconds, is refused: what a
    facility's container prints is read as if it were hostile.
    """
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    try:
        for stdout, stderr in chunks:
            out += stdout or b""
            err += stderr or b""
            del err[:-ERROR_BYTES]
            if len(out) > OUTPUT_BYTES:
                raise OutputRefused(f"{name} printed more than {OUTPUT_BYTES} bytes")
            if time.monotonic() > deadline:
                raise OutputRefused(f"{name} was still printing after {timeout:.0f} s")
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return bytes(out), bytes(err)


def _text(data: bytes | None) -> str:
    return (data or b"").decode(errors="replace")


def _create_kwargs(spec: ContainerSpec) -> dict:
    mounts = {name: {"bind": path, "mode": "rw"} for name, path in spec.volumes.items()}
    mounts.update({host: {"bind": path, "mode": "ro"} for host, path in spec.binds.items()})
    mounts.update({host: {"bind": path, "mode": "rw"} for host, path in spec.rw_binds.items()})
    limits = spec.limits
    kwargs = {
        "name": spec.name,
        "user": spec.user,
        "labels": spec.labels,
        "environment": spec.environment,
        "volumes": mounts,
        "read_only": True,
        "tmpfs": dict(TMPFS),
        "cap_drop": list(CAP_DROP),
        "security_opt": [*SECURITY_OPT, *([f"seccomp={spec.seccomp}"] if spec.seccomp else [])],
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "ports": {
            f"{inner}/tcp": (spec.bind_address, outer) if spec.bind_address else outer
            for inner, outer in spec.ports.items()
        },
        "detach": True,
    }
    if spec.network:
        kwargs["network"] = spec.network
    else:
        kwargs["network_mode"] = "none"
    if not spec.healthcheck:
        kwargs["healthcheck"] = {"test": ["NONE"]}
    if spec.stdin_open:
        kwargs["stdin_open"] = True
    if spec.group_add:
        kwargs["group_add"] = list(spec.group_add)
    if spec.restart:
        kwargs["restart_policy"] = {"Name": spec.restart}
    return kwargs


def free_subnet(pool: str, taken: list[str], prefixlen: int = 28) -> str:
    """The first block of the pool that overlaps no existing network."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    used = [u for u in used if u.version == 4]
    for candidate in ipaddress.ip_network(pool).subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise DockerError(f"no free /{prefixlen} left in MEDCELL_SUBNET_POOL {pool}")

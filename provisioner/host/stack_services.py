"""Cluster mode's gateway and supervisor: global Swarm services, one task on every node.

Each is the container spec of provisioner/host/specs.py rendered as a service (one spec, two
renderings), plus what only a cluster needs: the peer and node API ports and the node's cluster
TLS files. Host paths in the specs must therefore be the same on every node (MEDCELL_HOME).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker.errors
import docker.types
import docker.utils

from medcell_common.interfaces import (
    GATEWAY_PEER_PORT,
    SUPERVISOR_CLUSTER_TLS_DIR,
    Label,
)
from provisioner.host import cluster_ca, service_spec, specs
from provisioner.host.config import Config
from provisioner.host.docker_backend import (
    CAP_DROP,
    ContainerSpec,
    engine_errors,
    free_subnet,
)
from provisioner.host.errors import (
    DockerError,
    HealthTimeout,
    InvalidArgument,
    NotFound,
)
from provisioner.host.swarm import NODE_LABEL

# The node's cluster TLS material (cluster_ca.install), the only files of $MEDCELL_HOME/cluster a
# task may see: never the CA key, never a join bundle.
TLS_FILES = ("ca.crt", "node.crt", "node.key")
# The predefined network a task shares with its node (the supervisor's: see supervisor_spec).
HOST_NETWORK = "host"
# The supervisor mounts all of MEDCELL_HOME: its `cluster` folder (the CA key and join bundles on
# the first manager) is hidden by an empty tmpfs. (Such a tmpfs takes the mode of the folder it
# covers, 0700, and root as owner: no place to mount the node's files for a non-root operator's
# supervisor, hence SUPERVISOR_CLUSTER_TLS_DIR.)
HIDDEN_IN_SUPERVISOR = f"{specs.SUPERVISOR_HOME}/cluster"
MASK_BYTES = 64 * 1024
RESTART_DELAY_NS = 1 * 10**9
STOP_GRACE_NS = 10 * 10**9
NETWORK_REMOVE_SECONDS = 30.0


@dataclass(frozen=True)
class Task:
    """One task of a stack service: the node it runs on and Swarm's state of it."""

    node: str
    state: str  # Swarm's: new, pending, assigned, preparing, starting, running, failed, …
    error: str = ""


# The two specs, with what a cluster adds.


def edge_network(config: Config) -> str:
    """The gateway service's network: swarm-scoped, a bridge of its own on each node."""
    return f"{config.prefix}-cluster-edge"


def node_network(config: Config) -> str:
    """The network the supervisor service had before it ran on its node's host network; `up`
    removes it from an installation that still has it."""
    return f"{config.prefix}-cluster-node"


def check_settings(config: Config) -> None:
    """Refuse a setting that a service cannot keep, before anything is changed."""
    if config.gateway_bind:
        raise InvalidArgument(
            "MEDCELL_GATEWAY_BIND cannot be kept in cluster mode (a service publishes its ports "
            "on every address of its node); unset it and restrict access with the firewall"
        )


def gateway_spec(config: Config, user: str, image_id: str | None, network: str) -> ContainerSpec:
    """The gateway's container spec on the cluster's edge network (`network`: its ID), with its
    peer port published.

    Its cluster TLS files are a copy in its configuration folder (cluster_ca.install_for_gateway):
    it runs as
    its own uid, which cannot read the operator's owner-only originals.
    """
    check_settings(config)
    spec = specs.gateway_spec(config, user, image_id)
    return dataclasses.replace(
        spec,
        network=network,
        ports={**spec.ports, GATEWAY_PEER_PORT: GATEWAY_PEER_PORT},
        environment={**spec.environment, **specs.gateway_cluster_environment()},
    )


def supervisor_spec(
    config: Config,
    user: str,
    socket_gid: int | None,
    docker_socket: str,
    image_id: str | None,
) -> ContainerSpec:
    """The supervisor's container spec: the node's own Docker socket, the node's three cluster
    TLS files read-only, and the node's own network stack (HOST_NETWORK).

    On the host's network its node API listens on the node's port 9445 (every address, as a
    published port did) and its /metrics on MEDCELL_METRICS_BIND exactly as the operator set it:
    a Swarm service's published port binds every address of its node (there is no host address
    for one), so it could never keep /metrics on loopback. It gains nothing by it: the Docker
    socket it holds is the node already.
    """
    spec = specs.supervisor_spec(config, user, socket_gid, docker_socket, image_id, HOST_NETWORK)
    files = cluster_ca.cluster_dir(config.home)
    binds = {str(files / name): f"{SUPERVISOR_CLUSTER_TLS_DIR}/{name}" for name in TLS_FILES}
    host, port = config.metrics_bind
    environment = {**spec.environment, "MEDCELL_METRICS_BIND": f"{host}:{port}"}
    return dataclasses.replace(spec, binds={**spec.binds, **binds}, environment=environment)


def supervisor_masks() -> tuple[str, ...]:
    """What the supervisor must not see of its writable MEDCELL_HOME: the CA key and bundles."""
    return (HIDDEN_IN_SUPERVISOR,)


# Rendering a container spec as a global service.


def render(spec: ContainerSpec, masks: tuple[str, ...] = ()) -> dict:
    """The keyword arguments of docker-py's APIClient.create_service for `spec`, global.

    Everything the local backend adds to a container is here too (read-only root, no
    capabilities, the tmpfs, the limits); no-new-privileges and the swap limit are not
    expressible for services (API 1.41): every node's engine runs with "no-new-privileges": true
    (`cluster init`/`join` refuse one without it).
    """
    container: dict = {
        "Image": spec.image,
        "User": spec.user,
        "Env": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "Labels": dict(spec.labels),
        "Mounts": _mounts(spec, masks),
        "ReadOnly": True,
        "CapabilityDrop": list(CAP_DROP),
        "StopGracePeriod": STOP_GRACE_NS,
    }
    if spec.command:
        container["Args"] = list(spec.command)
    if spec.group_add:
        container["Groups"] = list(spec.group_add)
    if not spec.healthcheck:
        container["Healthcheck"] = {"Test": ["NONE"]}
    limits = spec.limits
    task_template = {
        "ContainerSpec": container,
        "Resources": {
            "Limits": {
                "MemoryBytes": docker.utils.parse_bytes(limits.memory),
                "NanoCPUs": int(limits.cpus * 1e9),
                # docker-py has no argument for it; the API (1.41) has.
                "Pids": limits.pids,
            }
        },
        "RestartPolicy": {"Condition": "any", "Delay": RESTART_DELAY_NS, "MaxAttempts": 0},
    }
    if spec.network:
        task_template["Networks"] = [{"Target": spec.network}]
    # No routing mesh (it needs IPVS): each node publishes its own task's ports, DNS round robin;
    # a task on its node's host network publishes nothing (its process binds the node's ports).
    ports = [
        {"Protocol": "tcp", "TargetPort": inner, "PublishedPort": outer, "PublishMode": "host"}
        for inner, outer in sorted(spec.ports.items())
    ]
    rendered = {
        "name": spec.name,
        "labels": dict(spec.labels),
        "task_template": task_template,
        "mode": {"Global": {}},
        # Host ports cannot be held by two tasks of one node: the old one stops first.
        "update_config": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
        "endpoint_spec": {"Mode": "dnsrr", "Ports": ports},
    }
    # A new fingerprint over everything rendered (the spec's own covers its image already).
    digest = hashlib.sha256(json.dumps(rendered, sort_keys=True).encode()).hexdigest()[:16]
    rendered["labels"][str(Label.CONFIG)] = digest
    container["Labels"][str(Label.CONFIG)] = digest
    return rendered


def _mounts(spec: ContainerSpec, masks: tuple[str, ...]) -> list[dict]:
    """The spec's mounts as a facility service has them, and an empty tmpfs over each mask."""
    mounts = service_spec.service_mounts(spec)
    mounts += [
        {
            "Type": "tmpfs",
            "Target": target,
            "TmpfsOptions": {"SizeBytes": MASK_BYTES, "Mode": 0o755},
        }
        for target in masks
    ]
    return sorted(mounts, key=lambda m: m["Target"])


class StackServices:
    """The global services of the stack on a Swarm manager, over a docker-py client."""

    def __init__(self, client_factory: Callable[[], object]):
        self._client_factory = client_factory

    @property
    def client(self):
        return self._client_factory()

    def service(self, name: str) -> dict | None:
        try:
            with engine_errors(f"inspecting service {name}"):
                return self.client.api.inspect_service(name)
        except NotFound:
            return None

    def ensure(self, rendered: dict) -> list[str]:
        """Create the service, or update it when its fingerprint changed; say what was done."""
        name = rendered["name"]
        current = self.service(name)
        if current is None:
            with engine_errors(f"creating service {name}"):
                self.client.api.create_service(**rendered)
            return [f"created service {name}"]
        labels = (current.get("Spec") or {}).get("Labels") or {}
        if labels.get(Label.CONFIG) == rendered["labels"][Label.CONFIG]:
            return []
        version = (current.get("Version") or {}).get("Index")
        with engine_errors(f"updating service {name}"):
            self.client.api.update_service(current["ID"], version, **rendered)
        return [f"updated service {name} for new settings or image"]

    def remove(self, name: str) -> bool:
        """Remove the service (a missing one is fine); True if there was one."""
        try:
            with engine_errors(f"removing service {name}"):
                self.client.api.remove_service(name)
        except NotFound:
            return False
        return True

    def tasks(self, name: str) -> list[Task]:
        """The service's tasks meant to run, with the name of each one's node."""
        with engine_errors(f"listing the tasks of {name}"):
            found = self.client.api.tasks(filters={"service": name, "desired-state": "running"})
            nodes = {n.id: _node_name(n.attrs) for n in self.client.nodes.list()}
        tasks = [
            Task(
                node=nodes.get(t.get("NodeID", ""), t.get("NodeID", "")),
                state=(t.get("Status") or {}).get("State", "unknown"),
                error=" ".join(((t.get("Status") or {}).get("Err") or "").split())[:300],
            )
            for t in found
        ]
        return sorted(tasks, key=lambda t: t.node)

    def ready_nodes(self) -> dict[str, str]:
        """The nodes a global service should run on now (ready, not drained): name -> address."""
        with engine_errors("listing the cluster's nodes"):
            nodes = [n.attrs for n in self.client.nodes.list()]
        return {
            _node_name(n): (n.get("Status") or {}).get("Addr", "")
            for n in sorted(nodes, key=_node_name)
            if (n.get("Status") or {}).get("State") == "ready"
            and (n.get("Spec") or {}).get("Availability") == "active"
        }

    def wait_running(
        self,
        name: str,
        timeout: float,
        answers: Callable[[str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> list[Task]:
        """Wait until the service runs a task on every ready node; HealthTimeout names the rest.

        `answers(address)`: whether the node's task answers already, for a task still
        `starting` (Swarm waits for the image's first health check, 30 s after the start).
        """
        deadline = clock() + timeout
        answered: set[str] = set()
        while True:
            tasks = self.tasks(name)
            nodes = self.ready_nodes()
            starting = {t.node for t in tasks if t.state == "starting"}
            if answers is not None:
                answered |= {n for n in starting & set(nodes) if answers(nodes[n])}
            running = {t.node for t in tasks if t.state == "running"} | (answered & starting)
            missing = [n for n in nodes if n not in running]
            if not missing:
                return tasks
            if clock() > deadline:
                states = {t.node: t for t in tasks}
                details = ", ".join(
                    f"{n} ({states[n].state}{': ' + states[n].error if states[n].error else ''})"
                    if n in states
                    else f"{n} (no task)"
                    for n in missing
                )
                raise HealthTimeout(
                    f"{name} is not running on every node after {timeout:g} s: {details}"
                )
            sleep(0.5)

    def ensure_network(self, name: str, pool: str, labels: dict[str, str]) -> tuple[str, list[str]]:
        """A swarm-scoped bridge (each node its own, with a route out for published ports), on a
        free /28 of the pool; returns its ID and what was done."""
        with engine_errors("listing networks"):
            networks = self.client.networks.list()
        for network in networks:
            if network.name == name:
                return network.id, []
        taken = [
            c["Subnet"]
            for n in networks
            for c in ((n.attrs.get("IPAM") or {}).get("Config") or [])
            if c.get("Subnet")
        ]
        ipam = docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=free_subnet(pool, taken))]
        )
        with engine_errors(f"creating network {name}"):
            network = self.client.networks.create(
                name, driver="bridge", scope="swarm", ipam=ipam, labels=labels, check_duplicate=True
            )
        return network.id, [f"created network {name}"]

    def remove_network(self, name: str, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Remove a network once the removed service's tasks have let go of it; a missing one is
        fine. Whether there was one."""
        deadline = time.monotonic() + NETWORK_REMOVE_SECONDS
        while True:
            try:
                with engine_errors(f"removing network {name}"):
                    self.client.networks.get(name).remove()
                return True
            except NotFound:
                return False
            except DockerError:
                if time.monotonic() > deadline:
                    raise
                sleep(0.5)


def _node_name(attrs: dict) -> str:
    labels = (attrs.get("Spec") or {}).get("Labels") or {}
    return labels.get(NODE_LABEL) or (attrs.get("Description") or {}).get("Hostname", "")

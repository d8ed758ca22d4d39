"""Where a facility's process runs, behind one small interface with two implementations.

LocalEngine is the single host of today: one container per facility on this host's Docker
Engine (docker_backend). SwarmEngine is cluster mode: one service per facility pinned to its node
(swarm), scaled to 1 awake and 0 asleep. Lifecycle (sleep, wake) is written once over either.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from provisioner.host.config import Config
from provisioner.host.docker_backend import ContainerSpec, DockerBackend
from provisioner.host.errors import DockerError, InvalidArgument
from provisioner.host.service_spec import STOP_GRACE_SECONDS, facility_service_spec
from provisioner.host.swarm import Swarm

# Beyond the stop grace, how long a stopping facility's task may take to be reported ended.
STOP_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class Whereabouts:
    """Where a facility is and whether it runs."""

    running: bool  # its process runs
    # The engine starts it by itself (a service at one replica whose task is not running yet).
    starting: bool
    node: str | None  # None: this host (single-host mode)
    container: str  # the container's name (single host) or id (on its node)
    state: str  # the engine's word: a container status or a task state
    error: str = ""


@runtime_checkable
class FacilityEngine(Protocol):
    """The facility operations lifecycle and the CLI need, whatever runs the containers."""

    def locate(self, slug: str) -> Whereabouts | None:
        """Where the facility is and whether it runs; None if it has no container or service."""

    def run(self, spec: ContainerSpec, node: str | None = None) -> None:
        """Create the facility's container (service) from its spec and start it."""

    def wake(self, slug: str, timeout: float) -> None:
        """Start its process; returns once the engine says it runs (health is the caller's)."""

    def sleep(self, slug: str, timeout: int) -> None:
        """Stop its process, giving it `timeout` seconds to end; its volumes stay."""

    def remove(self, slug: str) -> None:
        """Stop and remove its container (service); volumes stay. A missing one is fine."""

    def gateway_running(self) -> bool:
        """Whether a gateway runs on this host, which must then acknowledge route changes."""


class LocalEngine:
    """One container per facility on this host's Docker Engine."""

    def __init__(self, config: Config, backend: DockerBackend):
        self.config = config
        self.backend = backend

    def _name(self, slug: str) -> str:
        return self.config.facility(slug).container

    def locate(self, slug: str) -> Whereabouts | None:
        info = self.backend.container(self._name(slug))
        if info is None:
            return None
        running = info.status == "running"
        return Whereabouts(
            running=running, starting=False, node=None, container=info.name, state=info.status
        )

    def run(self, spec: ContainerSpec, node: str | None = None) -> None:
        if node is not None:
            raise InvalidArgument(f"--node {node}: this host is not in a cluster")
        self.backend.create_container(spec)
        self.backend.start(spec.name)

    def wake(self, slug: str, timeout: float) -> None:
        self.backend.start(self._name(slug))

    def sleep(self, slug: str, timeout: int) -> None:
        self.backend.stop(self._name(slug), timeout=timeout)

    def remove(self, slug: str) -> None:
        self.backend.remove_container(self._name(slug))

    def gateway_running(self) -> bool:
        # A gateway that cannot be looked at may be running: it must acknowledge.
        try:
            info = self.backend.container(self.config.gateway_container)
        except DockerError:
            return True
        return info is not None and info.status == "running"


class SwarmEngine:
    """One service per facility, pinned to its node; scaling goes through a manager.

    `swarm` is a manager's engine; `local` this node's own engine, where its gateway's task runs
    (None: not known here, so a route change always waits for the gateway's acknowledgement).
    """

    def __init__(self, config: Config, swarm: Swarm, local: DockerBackend | None = None):
        self.config = config
        self.swarm = swarm
        self.local = local

    def _name(self, slug: str) -> str:
        return self.config.facility(slug).container

    def locate(self, slug: str) -> Whereabouts | None:
        service = self.swarm.service(self._name(slug))
        if service is None:
            return None
        task = service.task
        return Whereabouts(
            running=service.running,
            starting=service.replicas > 0 and not service.running,
            node=task.node if task is not None and task.node else service.node,
            container=task.container_id if task is not None else "",
            state=task.state if task is not None else "asleep",
            error=task.error if task is not None else "",
        )

    def run(self, spec: ContainerSpec, node: str | None = None) -> None:
        if node is None:
            raise InvalidArgument(f"{spec.name}: a facility service needs a node to be pinned to")
        self.swarm.create_service(facility_service_spec(spec, node, replicas=1))

    def wake(self, slug: str, timeout: float) -> None:
        """Scale to one replica and wait for its task to run; if it cannot, back to zero, as a
        container that failed to start is left stopped."""
        name = self._name(slug)
        failed_before = self.swarm.failed_tasks(name)
        service = self.swarm.service(name)
        try:
            if service is not None and service.replicas == 0:
                self.swarm.scale(name, 1)
            self.swarm.wait_running(name, timeout, ignore=failed_before)
        except DockerError:
            with contextlib.suppress(DockerError):
                self.swarm.scale(name, 0)
            raise

    def sleep(self, slug: str, timeout: int) -> None:
        name = self._name(slug)
        self.swarm.scale(name, 0)
        # Scale 0 removes the container; its task ends within the service's stop grace.
        self.swarm.wait_stopped(name, max(timeout, STOP_GRACE_SECONDS) + STOP_MARGIN_SECONDS)

    def remove(self, slug: str) -> None:
        """Scale to zero and wait for the task to end before removing the service: the caller
        may go on to the volumes, which a process still running would hold."""
        name = self._name(slug)
        if self.swarm.service(name) is None:
            return
        self.sleep(slug, STOP_GRACE_SECONDS)
        self.swarm.remove_service(name)

    def gateway_running(self) -> bool:
        if self.local is None:
            return True
        labels = self.config.labels(role="gateway")
        try:
            found = self.local.containers(dict(labels))
        except DockerError:
            return True
        return any(c.status == "running" for c in found)


def engine_for(config: Config, backend: DockerBackend | FacilityEngine) -> FacilityEngine:
    """The engine behind what a caller hands lifecycle: an engine, or (single host) a backend."""
    if isinstance(backend, FacilityEngine):
        return backend
    return LocalEngine(config, backend)

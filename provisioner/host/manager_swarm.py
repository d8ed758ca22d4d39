"""A worker's view of its own facility services, through a manager's node API.

A worker's engine answers no Swarm call. Its supervisor still sleeps and wakes the facilities
pinned to it: ManagerSwarm stands in for the Swarm calls SwarmEngine makes (a service and its
tasks, a scale), each asked of a manager's node API over mutual TLS (provisioner/supervisor/
scaling.py serves them, and only for services pinned to the node that asks). The managers are
those this node's engine knows (Swarm.manager_addresses, which a worker answers too); the one
that answered last is asked first, the others after it. When none answers, the call fails as a
manager's would (DockerError), and the supervisor holds what needs one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medcell_common.interfaces import NODE_API_PORT
from provisioner.host.errors import (
    DockerError,
    FacilityNotFound,
    NodeError,
    NodeRefused,
    NodeUnreachable,
)
from provisioner.host.node_api import NodeClient
from provisioner.host.swarm import (
    FacilityService,
    NodeInfo,
    ServiceState,
    Swarm,
    TaskInfo,
    _current_task,
)

CALL_TIMEOUT = 10.0  # one manager's answer
POLL_SECONDS = 0.5  # a wait's looks at a task cost a manager a TLS request each

# This node's address and the managers' (Swarm.manager_addresses).
Managers = Callable[[], tuple[str, list[str]]]


class NoManagerAnswers(DockerError):
    """No manager's node API answered (all cut off, or none known)."""


class ManagerSwarm(Swarm):
    """The Swarm calls of SwarmEngine, through a manager's node API (see the module)."""

    poll_seconds = POLL_SECONDS

    def __init__(
        self,
        prefix: str,
        managers: Managers,
        tls_dir: Path,
        client: Callable[..., NodeClient] = NodeClient,
        port: int = NODE_API_PORT,
    ):
        super().__init__(client=None)
        self.prefix, self.managers, self.tls_dir, self.port = prefix, managers, tls_dir, port
        self.client_factory = client
        self.answered = ""
        self.node = ""  # this node's name, as the last manager that answered a listing said

    def _ask(self, call: Callable[[NodeClient], object]):
        own, managers = self.managers()
        order = sorted((m for m in managers if m != own), key=lambda m: m != self.answered)
        failures = []
        for address in order:
            try:
                client = self.client_factory(
                    f"{address}:{self.port}", self.tls_dir, timeout=CALL_TIMEOUT
                )
                answer = call(client)
            except (NodeUnreachable, NodeRefused) as e:
                failures.append(str(e)[:200])
                continue
            except NodeError as e:
                if e.status == 503:  # its own engine does not answer as a manager: the next
                    failures.append(str(e)[:200])
                    continue
                # The manager answered but refused (not this node's facility, say).
                raise DockerError(str(e)) from e
            self.answered = address
            return answer
        raise NoManagerAnswers(
            "no manager's node API answers"
            + (f" ({'; '.join(failures)})" if failures else " (none known)")
        )

    def lookup(self, slugs: list[str]) -> dict:
        """{"node", "pinned": {slug: replicas}, "placed": {slug: node or None}}."""
        found = self._ask(lambda c: c.scaling_lookup(slugs))
        self.node = found["node"]
        return found

    def facility_services(self, node: str | None = None) -> list[FacilityService]:
        found = self.lookup([])
        return [FacilityService(slug, found["node"], r) for slug, r in found["pinned"].items()]

    def service(self, name: str) -> ServiceState | None:
        slug = name.removeprefix(f"{self.prefix}-")
        try:
            answer = self._ask(lambda c: c.scaling_service(slug))
        except FacilityNotFound:
            return None
        tasks = [_task(t) for t in answer["tasks"]]
        return ServiceState(
            name=name,
            slug=slug,
            node=answer["node"],
            replicas=answer["replicas"],
            task=_current_task(tasks),
        )

    def scale(self, name: str, replicas: int) -> None:
        slug = name.removeprefix(f"{self.prefix}-")
        self._ask(lambda c: c.scale(slug, replicas))

    def tasks(self, name: str) -> list[TaskInfo]:
        return self._tasks(name)

    def _tasks(self, name: str) -> list[TaskInfo]:
        slug = name.removeprefix(f"{self.prefix}-")
        try:
            answer = self._ask(lambda c: c.scaling_service(slug))
        except FacilityNotFound:
            return []
        return [_task(t) for t in answer["tasks"]]

    def nodes(self) -> list[NodeInfo]:
        """The ready nodes with their node API's address (where backups may go)."""
        answer = self._ask(lambda c: c.cluster_nodes())
        self.node = answer["node"]
        return [
            NodeInfo(
                id="",
                name=n["name"],
                address=n["address"],
                state="ready",
                availability="",  # not told: a backup goes to a drained node all the same
                manager=n["manager"],
                memory=0,
                labels={},
            )
            for n in answer["nodes"]
        ]

    def take_lock(self, slug: str) -> dict:
        return self._ask(lambda c: c.take_lock(slug))

    def renew_lock(self, slug: str, lock: str) -> None:
        self._ask(lambda c: c.renew_lock(slug, lock))

    def release_lock(self, slug: str, lock: str) -> bool:
        return self._ask(lambda c: c.release_lock(slug, lock))

    def _node_names(self) -> dict[str, str]:
        return {}  # the manager names each task's node already


def _task(fields: dict) -> TaskInfo:
    return TaskInfo(
        id=fields["id"],
        node=fields["node"],
        state=fields["state"],
        desired=fields["desired"],
        container_id=fields["container_id"],
        error=fields["error"],
    )

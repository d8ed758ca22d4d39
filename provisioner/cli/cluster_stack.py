"""`medcell up` / `down` / `status` in cluster mode: the gateway and the supervisor as global
Swarm services, one task on every node (provisioner/host/stack_services.py renders them).

Cluster mode is this host's engine being an active Swarm member that `medcell cluster init` or
`join` gave its node certificate; anywhere else everything stays single-host.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import requests
import urllib3

from medcell_common.interfaces import Status
from provisioner.cli.cluster_facilities import cluster_mode
from provisioner.host import cluster_ca, stack_services
from provisioner.host.stack_services import StackServices, Task

if TYPE_CHECKING:
    from provisioner.cli.stack import Stack


class ClusterStack:
    """The stack's services on a Swarm manager, and this node's share of them."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.config = stack.config
        self.backend = stack.backend
        self.services = StackServices(lambda: self.backend.client)

    def active(self) -> bool:
        """Cluster mode? Decided without the engine when this host never joined a cluster."""
        return cluster_mode(self.config, self.backend)

    def prepare_node(self, gateway_owner: tuple[int, int] | None) -> list[str]:
        """What this node's tasks need from it: no single-host gateway or supervisor holding the
        ports or the facilities, and the gateway's copy of the node's cluster TLS files."""
        stack_services.check_settings(self.config)
        done = []
        for name in (self.config.gateway_container, self.config.supervisor_container):
            if self.backend.container(name) is not None:
                self.backend.remove_container(name)
                done.append(f"removed the single-host container {name}")
        networks = (self.config.edge_network, self.config.mail_network, self.config.metrics_network)
        for network in networks:
            if self.backend.network(network) is not None:
                self.backend.remove_network(network)
                done.append(f"removed network {network}")
        cluster_ca.install_for_gateway(self.config.home, self.config.gateway_dir, gateway_owner)
        return done

    def ensure(self, user: str) -> list[str]:
        """Create or update both services; wait until each runs on every ready node."""
        config, backend = self.config, self.backend
        labels = config.labels(role="gateway")
        edge, done = self.services.ensure_network(
            stack_services.edge_network(config), config.subnet_pool, labels
        )
        gateway = stack_services.gateway_spec(
            config, user, backend.image_id(config.gateway_image), edge
        )
        done += self.services.ensure(stack_services.render(gateway))
        supervisor_user, gid, socket = self.stack.supervisor_identity()
        supervisor = stack_services.supervisor_spec(
            config, supervisor_user, gid, socket, backend.image_id(config.supervisor_image)
        )
        done += self.services.ensure(
            stack_services.render(supervisor, masks=stack_services.supervisor_masks())
        )
        for name, answers in ((gateway.name, self._gateway_answers), (supervisor.name, None)):
            self.services.wait_running(
                name,
                config.health_timeout,
                answers=answers,
                sleep=self.stack.sleep,
                clock=self.stack.clock,
            )
        # The supervisor's network of before (it runs on its node's host network now).
        if self.services.remove_network(stack_services.node_network(config)):
            done.append(f"removed network {stack_services.node_network(config)}")
        return done

    def _gateway_answers(self, address: str) -> bool:
        """The image's own health check, from here: the node's gateway answers /healthz."""
        return gateway_answers(address, self.config.gateway_port)

    def down(self) -> dict:
        """Remove the gateway service (every node's gateway); the supervisors keep running."""
        name = self.config.gateway_container
        removed = self.services.remove(name)
        self.services.remove_network(stack_services.edge_network(self.config))
        return {"gateway": name, "removed": removed}

    def status(self, name: str) -> tuple[str, dict[str, str]]:
        """A service's status over the ready nodes, and its task's state on each node."""
        if self.services.service(name) is None:
            return Status.STOPPED, {}
        by_node = _by_node(self.services.tasks(name))
        ready = self.services.ready_nodes()
        nodes = {node: by_node.get(node, "missing") for node in sorted({*ready, *by_node})}
        # As for a container: one started and waiting for its first health check counts.
        running = all(nodes.get(node) in ("running", "starting") for node in ready)
        return (Status.RUNNING if running else Status.UNHEALTHY), nodes


def gateway_answers(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a node's gateway answers GET /healthz over HTTPS (its certificate may be
    self-signed and never names an address: nothing secret is sent)."""
    host = f"[{address}]" if ":" in address else address
    session = requests.Session()
    session.trust_env = False  # no proxy, no CA bundle from the environment
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = session.get(f"https://{host}:{port}/healthz", verify=False, timeout=timeout)
    except requests.RequestException:
        return False
    finally:
        session.close()
    return response.status_code == 200


def _by_node(tasks: list[Task]) -> dict[str, str]:
    """Each node's task state; where a node has several tasks (one replacing another), the
    running one counts."""
    states: dict[str, str] = {}
    for task in tasks:
        if states.get(task.node) != "running":
            states[task.node] = task.state
    return states

"""`python -m provisioner.supervisor`: run until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading

from provisioner.host import locks
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import ProvisionerError
from provisioner.supervisor import cluster, logs, node_api
from provisioner.supervisor.service import Supervisor

# Held wake requests each take a thread; they only wait, so a small stack is plenty.
THREAD_STACK = 512 * 1024


def main() -> int:
    logs.configure()
    threading.stack_size(THREAD_STACK)
    try:
        config = Config.from_env()
    except ProvisionerError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    locks.set_holder("the supervisor")  # named in a command's error while it sleeps or wakes one
    backend = DockerBackend()
    # A cluster node's supervisor looks after the facility services pinned to this node.
    node = None
    if cluster.detect(config, backend):
        node = cluster.NodeEngine(config, backend, cluster.NodeSwarm())
    supervisor = Supervisor(config, backend, node=node)
    # The handler only sets a flag; the loop notices within one tick and shuts down in order.
    signal.signal(signal.SIGTERM, lambda signum, frame: supervisor.stop())
    signal.signal(signal.SIGINT, lambda signum, frame: supervisor.stop())
    supervisor.start_server()
    supervisor.start_metrics()
    # Only on a cluster node; its sleeps and wakes for a manager go through this node's engine.
    # A facility it restores (moved here) brings deletion totals counted on its old node.
    node_server = node_api.start(
        config, DockerBackend(), node, restored=supervisor.metrics.deletions.adopt_next
    )
    try:
        supervisor.run()
    finally:
        if node_server is not None:
            node_server.shutdown()
            node_server.server_close()
        supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

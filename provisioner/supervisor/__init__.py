"""medcell's supervisor: keeps facilities at their desired state, sleeps and wakes them.

Run as `python -m provisioner.supervisor` in the `medcell-supervisor` container, the only
component besides the CLI that holds the Docker socket.
"""

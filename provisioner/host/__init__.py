"""Host operations the CLI and the supervisor share: configuration, Docker, state files, locks,
routes, talking to a facility (HTTP over its socket, management commands), sleep and wake.

Imports nothing from provisioner.cli or provisioner.supervisor.
"""

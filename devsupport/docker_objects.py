"""Clean-up shared by the Docker tests and the benchmarks: all a private installation made."""

import docker.errors


def remove_installation(client, prefix: str) -> None:
    """Force-remove every container, network and volume labelled with this installation's prefix."""
    only_ours = {"label": [f"medcell.instance={prefix}"]}
    for container in client.containers.list(all=True, filters=only_ours, ignore_removed=True):
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass  # removed meanwhile by the installation's own supervisor
    for network in client.networks.list(filters=only_ours):
        network.remove()
    for volume in client.volumes.list(filters=only_ours):
        volume.remove(force=True)

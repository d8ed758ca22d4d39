"""A facility's ContainerSpec rendered as a Swarm service (docker_backend renders it locally):
one spec, two renderings, so a facility's settings are written once (specs.py)."""

from __future__ import annotations

from docker.utils import parse_bytes

from medcell_common.interfaces import Label
from provisioner.host.docker_backend import CAP_DROP, TMPFS, ContainerSpec
from provisioner.host.swarm import FACILITY_LABEL, NODE_LABEL, pin_constraint

# A facility's process gets this long to end after SIGTERM (gunicorn's graceful shutdown), as a
# single-host facility container gets from `docker stop`.
STOP_GRACE_SECONDS = 30
# A task that ended is replaced on its own node after this long: a crashing facility starts at
# most once per RESTART_DELAY_SECONDS there, and never anywhere else (its constraint).
RESTART_DELAY_SECONDS = 5


def facility_service_spec(spec: ContainerSpec, node: str, replicas: int = 1) -> dict:
    """The facility's service: replicated (1 awake, 0 asleep), pinned to `node`.

    The same image, user, environment, labels, mounts and limits, pinned to `node`. Two
    settings cannot be asked of a service in API 1.41 and hold because every facility node's
    dockerd runs with them (`cluster join` refuses an engine without): no network
    ("bridge": "none"; the task gets no network attachment here) and no-new-privileges. Nor is
    memswap: facility nodes have no swap. Nor is the facility's seccomp profile (spec.seccomp):
    a service runs under Docker's default one.
    """
    if spec.network is not None:
        raise ValueError(f"{spec.name}: a facility service has no network, not {spec.network}")
    if spec.ports or spec.group_add or spec.stdin_open:
        raise ValueError(f"{spec.name}: ports, extra groups and stdin are not for a facility")
    limits = spec.limits
    container = {
        "Image": spec.image,
        "User": spec.user,
        "Env": [f"{k}={v}" for k, v in spec.environment.items()],
        # The node finds its facility's container by these, as on a single host.
        "Labels": dict(spec.labels),
        "Mounts": service_mounts(spec),
        "ReadOnly": True,
        "CapabilityDrop": list(CAP_DROP),
        "StopGracePeriod": STOP_GRACE_SECONDS * 10**9,
    }
    if spec.command is not None:
        container["Command"] = list(spec.command)
    if not spec.healthcheck:
        container["Healthcheck"] = {"Test": ["NONE"]}
    task_template = {
        "ContainerSpec": container,
        "Resources": {
            "Limits": {
                "NanoCPUs": int(limits.cpus * 1e9),
                "MemoryBytes": parse_bytes(limits.memory),
                # docker-py has no argument for it; the engine's field is there since API 1.41.
                "Pids": limits.pids,
            }
        },
        # "any", like the single-host container's unless-stopped: a facility that ends for any
        # reason comes back, on its own node with its own volumes (the constraint), after a
        # delay that bounds a crash loop. No attempt limit: a facility given up on would sit at
        # one replica with nothing running until an operator noticed.
        "RestartPolicy": {
            "Condition": "any",
            "Delay": RESTART_DELAY_SECONDS * 10**9,
            "MaxAttempts": 0,
            "Window": 0,
        },
        "Placement": {"Constraints": [pin_constraint(node)]},
    }
    # The node must hold the facility's volumes and socket directory before it starts: Swarm
    # would make empty volumes, and rejects a task whose bind source is missing.
    return {
        "Name": spec.name,
        # Its node too, so a node's supervisor lists only its own services (swarm.py); a re-pin
        # renders the spec again for the new node, label and constraint together.
        "Labels": {
            **{k: v for k, v in spec.labels.items() if k in _SERVICE_LABELS},
            NODE_LABEL: node,
        },
        "TaskTemplate": task_template,
        "Mode": {"Replicated": {"Replicas": replicas}},
        # Stop the old task before starting its replacement: two processes must never open one
        # facility's data volume at once.
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
    }


_SERVICE_LABELS = {str(Label.INSTANCE), FACILITY_LABEL, str(Label.ROLE)}


def service_mounts(spec: ContainerSpec) -> list[dict]:
    """A container spec's volumes, binds and tmpfs as a service's mounts."""
    mounts = [
        {"Type": "volume", "Source": name, "Target": target, "ReadOnly": False}
        for name, target in spec.volumes.items()
    ]
    mounts += [
        {"Type": "bind", "Source": host, "Target": target, "ReadOnly": True}
        for host, target in spec.binds.items()
    ]
    mounts += [
        {"Type": "bind", "Source": host, "Target": target, "ReadOnly": False}
        for host, target in spec.rw_binds.items()
    ]
    mounts += [_tmpfs(target, options) for target, options in TMPFS.items()]
    return mounts


def _tmpfs(target: str, options: str) -> dict:
    """docker_backend's tmpfs options as a service mount.

    A service's tmpfs takes only a size and a mode; Swarm mounts it noexec, nosuid and nodev
    by itself (measured on the task), so those flags need no field. Any other option is refused
    rather than dropped.
    """
    tmpfs: dict[str, int] = {}
    for option in options.split(","):
        key, _, value = option.partition("=")
        if key == "size":
            tmpfs["SizeBytes"] = parse_bytes(value)
        elif key == "mode":
            tmpfs["Mode"] = int(value, 8)
        elif option not in ("noexec", "nosuid", "nodev"):
            raise ValueError(f"tmpfs option {option!r} has no Swarm rendering")
    return {"Type": "tmpfs", "Target": target, "TmpfsOptions": tmpfs}

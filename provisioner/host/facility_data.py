"""A facility's data on this host: made ready, commanded, destroyed.

What a cluster node does for the managers (through its node API) on its own engine: the same
volumes, socket directory and state file a single-host `facility create` makes, the management
commands the CLI runs in a facility, and the destruction `facility delete` does (wipe with a
receipt, shred the keys, remove volumes and files).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable

from medcell_common.interfaces import Desired, Label, RouteState, Status
from provisioner.host import (
    facility_commands,
    home,
    lifecycle,
    locks,
    routes,
    specs,
    state_file,
    tombstones,
)
from provisioner.host.config import Config, idle_text, parse_idle
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import FacilityEngine
from provisioner.host.errors import (
    DockerError,
    FacilityCommandFailed,
    FacilityNotFound,
    InvalidArgument,
    ProvisionerError,
)
from provisioner.host.state_file import FacilityState
from provisioner.host.validation import check_name, check_quota, check_retention

# The data volume's metadata a facility is made with (its labels medcell.<key>).
META_KEYS = ("name", "retention", "created", "idle")
_CREATED_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,15}Z$")
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_RECEIPTS = 100_000

# The management commands a manager may run in a facility, and the ones that only read (they
# also run in a one-off container while the facility sleeps, as the single-host CLI does).
MANAGE_COMMANDS = ("create-admin", "rotate-key", "set-quota", "usage", "receipts", "receipt-key")
READ_ONLY = ("receipts", "receipt-key")
# What a manager may have a node do to a facility's process (`facility sleep|wake|stop|start`).
LIFECYCLE_ACTIONS = ("sleep", "wake", "stop", "start")


def check_meta(meta: object) -> dict[str, str]:
    """The metadata of a new facility: name and retention, optionally created and idle."""
    if not isinstance(meta, dict):
        raise InvalidArgument("labels must be an object")
    unknown = sorted(str(k)[:40] for k in meta if k not in META_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown labels {', '.join(unknown)}; known: {', '.join(META_KEYS)}")
    if not all(isinstance(v, str) for v in meta.values()):
        raise InvalidArgument("every label is a string")
    if "name" not in meta or "retention" not in meta:
        raise InvalidArgument("labels need name and retention")
    checked = {"name": check_name(meta["name"]), "retention": check_retention(meta["retention"])}
    if "created" in meta:
        if not _CREATED_RE.fullmatch(meta["created"]):
            raise InvalidArgument("created must be a UTC time like 2026-12-05T13:18:16.123Z")
        checked["created"] = meta["created"]
    if "idle" in meta:
        checked["idle"] = idle_text(parse_idle(meta["idle"]))
    return checked


def check_command(command: object) -> list[str]:
    """A whitelisted management command with arguments it accepts; InvalidArgument otherwise."""
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise InvalidArgument("command must be a non-empty list of strings")
    name, args = command[0], command[1:]
    if name not in MANAGE_COMMANDS:
        raise InvalidArgument(
            f"command {name[:40]!r} is not one a node runs; one of {', '.join(MANAGE_COMMANDS)}"
        )
    options = _options(name, args)
    if name == "create-admin":
        if set(options) - {"--username"} or not _USERNAME_RE.fullmatch(
            options.get("--username", "admin")
        ):
            raise InvalidArgument("create-admin takes --username NAME (letters, digits, ._@-)")
    elif name == "set-quota":
        if not options or set(options) - {"--facility", "--conversation"}:
            raise InvalidArgument("set-quota takes --facility SIZE, --conversation SIZE or both")
        for value in options.values():
            check_quota(value)
    elif name == "receipts":
        limit = options.get("--limit", "1")
        if set(options) - {"--limit"} or not limit.isdigit() or not 1 <= int(limit) <= MAX_RECEIPTS:
            raise InvalidArgument(f"receipts takes --limit N (1-{MAX_RECEIPTS})")
    elif options:
        raise InvalidArgument(f"{name} takes no arguments")
    return [name, *args]


def _options(name: str, args: list[str]) -> dict[str, str]:
    """`--option value` pairs, each option at most once."""
    if len(args) % 2:
        raise InvalidArgument(f"{name}: every option takes one value")
    options: dict[str, str] = {}
    for option, value in zip(args[::2], args[1::2], strict=True):
        if not option.startswith("--") or option in options or value.startswith("-"):
            raise InvalidArgument(f"{name}: arguments must be distinct --option value pairs")
        options[option] = value
    return options


def local_slugs(config: Config, backend: DockerBackend) -> list[str]:
    """The facilities whose data lives on this host (their data volumes)."""
    volumes = backend.volumes(config.labels(role="data"))
    return sorted({v.labels[Label.FACILITY] for v in volumes if v.labels.get(Label.FACILITY)})


def awake_count(config: Config, backend: DockerBackend) -> int:
    """Facility containers running on this host."""
    return sum(
        1 for c in backend.containers(config.labels(role="facility")) if c.status == "running"
    )


def prepare(config: Config, backend: DockerBackend, slug: str, meta: dict[str, str]) -> dict:
    """Make the facility's two volumes, socket directory and state file; what exists is kept."""
    facility = config.facility(slug)
    made = []
    if backend.volume(facility.data_volume) is None:
        backend.create_volume(
            facility.data_volume, config.labels(facility=slug, role="data", **meta)
        )
        made.append(facility.data_volume)
    if backend.volume(facility.keys_volume) is None:
        backend.create_volume(facility.keys_volume, config.labels(facility=slug, role="keys"))
        made.append(facility.keys_volume)
    home.ensure_socket_dir(facility)
    if not state_file.state_path(config, slug).exists():
        idle = parse_idle(meta["idle"]) if "idle" in meta else None
        state_file.save(config, slug, FacilityState(idle=idle))
    return {"slug": slug, "created": made}


def require(config: Config, backend: DockerBackend, slug: str) -> None:
    """FacilityNotFound unless the facility has a volume or a container on this host."""
    labels = {Label.INSTANCE: config.prefix, Label.FACILITY: slug}
    if not (backend.volumes(labels) or backend.containers(labels)):
        raise FacilityNotFound(f"no facility {slug} on this node")


def running_container(config: Config, backend: DockerBackend, slug: str) -> str | None:
    """The facility's running container, found by its labels (a Swarm task's name is its own)."""
    for info in backend.containers(config.labels(facility=slug, role="facility")):
        if info.status == "running":
            return info.name
    return None


def manage(config: Config, backend: DockerBackend, slug: str, command: list[str]) -> dict:
    """Run a checked management command in the facility's running container; a read-only one
    also runs in a one-off container while the facility sleeps."""
    if command[0] not in READ_ONLY and running_container(config, backend, slug) is None:
        raise FacilityCommandFailed(f"facility {slug} is not running on this node; wake it first")
    return _run(config, backend, slug, *command)


def require_image(config: Config, backend: DockerBackend) -> None:
    if backend.image_id(config.facility_image) is None:
        raise DockerError(f"image {config.facility_image} is missing on this node")


def destroy(
    config: Config,
    backend: DockerBackend,
    slug: str,
    progress: Callable[[str], None],
    log: bool = True,
) -> dict:
    """Wipe (with a receipt, if the facility can give one), shred the keys, then remove the
    containers, volumes, route, state file and socket directory of the facility on this host.
    `log`: a deletion (False: the facility moved to another node and lives on there)."""
    facility = config.facility(slug)
    labels = {Label.INSTANCE: config.prefix, Label.FACILITY: slug}
    containers = backend.containers(labels)
    volumes = {v.name for v in backend.volumes(labels)}
    has_files = state_file.state_path(config, slug).exists() or facility.socket_dir.exists()
    if not (containers or volumes or has_files):
        raise FacilityNotFound(f"no facility {slug} on this node")
    wiped = {"receipt": None, "receipt_key": None}
    if {facility.data_volume, facility.keys_volume} <= volumes:
        try:
            result = _run(config, backend, slug, "wipe")
            wiped = {"receipt": result.get("receipt"), "receipt_key": result.get("receipt_key")}
        except ProvisionerError as e:
            progress(f"no wipe receipt for {slug} ({e}); deleting all the same")
    shredded = _shred(config, backend, slug) if facility.keys_volume in volumes else 0
    for info in containers:
        backend.remove_container(info.name)
    for volume in sorted(volumes):
        backend.remove_volume(volume)
    routes.set_route(config, slug, None)
    state_file.remove(config, slug)
    tombstones.destroy_for(config, slug)  # collected here, or waiting for the managers
    shutil.rmtree(facility.socket_dir, ignore_errors=True)
    if log:
        home.log_deletion(config, slug)
    return {"slug": slug, "shredded": shredded, **wiped}


def _run(config: Config, backend: DockerBackend, slug: str, *command: str) -> dict:
    """Any management command: in the running container, else in a one-off one."""
    container = running_container(config, backend, slug)
    if container is not None:
        return facility_commands.manage(backend, container, *command)
    require_image(config, backend)
    return facility_commands.manage_offline(backend, specs.offline_spec(config, slug, *command))


def _shred(config: Config, backend: DockerBackend, slug: str) -> int:
    """Destroy the keys first (crypto-shredding); nothing else is removed if that fails."""
    container = running_container(config, backend, slug)
    if container is not None:
        try:
            return int(
                facility_commands.manage(backend, container, "shred-keys").get("destroyed", 0)
            )
        except (ProvisionerError, TypeError, ValueError):
            pass  # offline below, on the stopped container's volumes
        backend.stop(container)
    if backend.image_id(config.facility_image) is None:
        raise DockerError(f"image {config.facility_image} is needed to destroy the keys")
    return facility_commands.shred_offline(backend, specs.shred_spec(config, slug))


def change(config: Config, engine: FacilityEngine, slug: str, action: str, lock_wait: float) -> str:
    """The operator's sleep, wake, stop or start of a facility on this node, as on one host:
    over the node's engine (a Swarm service is scaled) with its state file and route here.
    Returns the status it is left in."""
    if action == "sleep":
        slept = lifecycle.put_to_sleep(config, engine, slug, require_idle=None, lock_wait=lock_wait)
        return Status.ASLEEP if slept else Status.RUNNING
    if action == "wake":
        lifecycle.wake(config, engine, slug, reason="operator", lock_wait=lock_wait)
        return Status.RUNNING
    if action == "stop":
        with locks.facility_lock(config, slug, wait=lock_wait):
            where = engine.locate(slug)
            if where is None:
                raise FacilityNotFound(f"no facility {slug}")
            # Saved first, so this node's supervisor wakes it no more (no request, no deadline).
            st = state_file.load(config, slug)
            st.desired, st.asleep, st.wake_at = Desired.STOPPED, False, None
            state_file.save(config, slug, st)
            if where.running or where.starting:
                engine.sleep(slug, lifecycle.STOP_TIMEOUT)
            routes.set_route(config, slug, RouteState.STOPPED)
        return Status.STOPPED
    if action != "start":
        raise InvalidArgument(f"action must be one of {', '.join(LIFECYCLE_ACTIONS)}")
    with locks.facility_lock(config, slug, wait=lock_wait):
        if engine.locate(slug) is None:
            raise FacilityNotFound(f"no facility {slug}")
        st = state_file.load(config, slug)
        if st.desired != Desired.RUNNING:
            st.desired, st.asleep = Desired.RUNNING, True  # as a sleeping one, until it answers
            state_file.save(config, slug, st)
    lifecycle.wake(config, engine, slug, reason="operator", lock_wait=lock_wait)
    return Status.RUNNING

"""Sealed backups on a cluster node: made, held, handed over and restored on its own engine.

A manager asks a node (through its node API) to back up one of its facilities: the one-off
container of the facility's image writes the sealed files into `$MEDCELL_HOME/backups/held/<id>/`
on that node, the backup key handed in on stdin and never written there. The files stay held until
the manager has copied them where they go (an operator's directory, another node for a move or a
scheduled backup) and drops them. A restore is the reverse: the files are held on the facility's
node, and the one-off container restores them over its stopped volumes with the key and the
tombstones the manager hands in.

The one-off container's bind mount names a path of the host, which the supervisor (in its own
container, where MEDCELL_HOME is another path) learns from MEDCELL_HOST_HOME.
"""

from __future__ import annotations

import os
import re
import shutil
from base64 import b64decode, b64encode
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from medcell_common import strictjson
from medcell_common import tombstones as tombstone_format
from medcell_common.interfaces import Desired, Label, RouteState
from medcell_common.rules import MAX_RETENTION
from medcell_common.times import iso_utc
from provisioner.host import backup_keys, facility_commands, routes, specs, state_file
from provisioner.host.config import FACILITY_UID, Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import (
    BackupRefused,
    Busy,
    DockerError,
    FacilityNotFound,
    InvalidArgument,
)

FILES = ("manifest.json", "keys.sealed", "snapshot.sealed")
BACKUP_ID_RE = re.compile(r"^[0-9a-f]{16}$")
MANIFEST_BYTES = 64 * 1024
MAX_FILE_BYTES = 1 << 40  # one sealed snapshot; the disk is the real bound
COMMAND_SECONDS = 3600.0  # a snapshot of a full facility (GiBs) is written and sealed in this
CHUNK = 1024 * 1024
DAY = 86400
HOLD_APPLY_SECONDS = 5.0
ISO = "%Y-%m-%dT%H:%M:%SZ"
META = {"name": Label.NAME, "retention": Label.RETENTION, "created": Label.CREATED}


def check_backup_id(backup_id: object) -> str:
    if not isinstance(backup_id, str) or not BACKUP_ID_RE.fullmatch(backup_id):
        raise InvalidArgument("a backup id is 16 hex digits")
    return backup_id


def check_file(name: object) -> str:
    if name not in FILES:
        raise InvalidArgument(f"a backup holds only {', '.join(FILES)}")
    return str(name)


def key_text(key: bytes) -> str:
    return b64encode(key).decode()


def check_key(text: object) -> bytes:
    """A backup key as it travels: base64 of 32 bytes."""
    try:
        key = b64decode(text if isinstance(text, str) else "", validate=True)
    except ValueError as e:
        raise InvalidArgument("a backup key is base64 of 32 bytes") from e
    if len(key) != 32:
        raise InvalidArgument("a backup key is base64 of 32 bytes")
    return key


def held_root(config: Config) -> Path:
    return config.home / "backups" / "held"


def held_dir(config: Config, backup_id: str) -> Path:
    return held_root(config) / check_backup_id(backup_id)


def host_path(config: Config, path: Path) -> str:
    """`path` under MEDCELL_HOME as the host's engine sees it (for a bind mount)."""
    host_home = os.environ.get("MEDCELL_HOST_HOME") or str(config.home)
    return str(Path(host_home) / path.relative_to(config.home))


def _volumes(config: Config, backend: DockerBackend, slug: str) -> dict[str, str]:
    """The data volume's labels; FacilityNotFound unless both volumes are on this node."""
    names = config.facility(slug)
    data, keys = backend.volume(names.data_volume), backend.volume(names.keys_volume)
    if data is None or keys is None:
        raise FacilityNotFound(f"no facility {slug} on this node")
    return dict(data.labels)


def _require_stopped(config: Config, backend: DockerBackend, slug: str) -> None:
    for info in backend.containers(config.labels(facility=slug, role="facility")):
        if info.status in ("running", "restarting", "paused"):
            raise Busy(f"facility {slug} still runs on this node; stop it before a restore")


def _require_image(config: Config, backend: DockerBackend) -> None:
    if backend.image_id(config.facility_image) is None:
        raise DockerError(f"image {config.facility_image} is missing on this node")


def make(config: Config, backend: DockerBackend, slug: str, backup_id: str, key: bytes) -> dict:
    """Back up the facility into its held folder; the manifest, its metadata and file sizes."""
    labels = _volumes(config, backend, slug)
    _require_image(config, backend)
    target = held_dir(config, backup_id)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(mode=0o700)
    # The facility's uid writes the files; the home (0700) keeps everyone else out. The
    # supervisor runs without capabilities: even as root it cannot give the folder away.
    try:
        os.chown(target, FACILITY_UID, FACILITY_UID)
    except PermissionError:
        os.chmod(target, 0o777)
    try:
        spec = specs.backup_spec(config, slug, labels, host_path(config, target), backup_id)
        manifest = facility_commands.run_offline(
            backend, spec, stdin=key_text(key).encode() + b"\n", timeout=COMMAND_SECONDS
        )
        if manifest.get("backup_id") != backup_id or manifest.get("facility") != slug:
            raise BackupRefused("the facility wrote a backup that is not the one asked for")
        sizes = {name: (target / name).stat().st_size for name in FILES}
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    meta = {k: labels[label] for k, label in META.items() if labels.get(label)}
    if labels.get(Label.IDLE):
        meta["idle"] = labels[Label.IDLE]
    return {"manifest": read_manifest(target), "meta": meta, "sizes": sizes}


def read_manifest(directory: Path) -> dict:
    """A held backup's manifest (the facility's word: small strict JSON, fields checked by the
    manager that reads it)."""
    try:
        with open(directory / "manifest.json", "rb") as f:
            manifest = strictjson.loads(f.read(MANIFEST_BYTES + 1), MANIFEST_BYTES)
    except FileNotFoundError as e:
        raise FacilityNotFound(f"no backup held in {directory.name}") from e
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"the manifest of backup {directory.name} is unreadable") from e
    if not isinstance(manifest, dict):
        raise InvalidArgument(f"the manifest of backup {directory.name} is not an object")
    return manifest


def restore(
    config: Config,
    backend: DockerBackend,
    slug: str,
    backup_id: str,
    key: bytes,
    tombstones: list[dict],
) -> dict:
    """Restore the held backup over the facility's stopped volumes, re-applying `tombstones`."""
    labels = _volumes(config, backend, slug)
    _require_stopped(config, backend, slug)
    _require_image(config, backend)
    source = held_dir(config, backup_id)
    missing = [name for name in FILES if not (source / name).is_file()]
    if missing:
        raise InvalidArgument(f"backup {backup_id} is not held whole here ({', '.join(missing)})")
    if read_manifest(source).get("facility") != slug:
        raise InvalidArgument(f"backup {backup_id} is not one of {slug}")
    os.chmod(source, 0o755)  # the facility's uid reads it; the home (0700) keeps others out
    for name in FILES:
        os.chmod(source / name, 0o644)
    spec = specs.restore_spec(config, slug, labels, host_path(config, source))
    stdin = key_text(key).encode() + b"\n"
    stdin += strictjson.dumps({"tombstones": tombstones}).encode() + b"\n"
    if len(stdin) > tombstone_format.MAX_RESTORE_BYTES:
        raise InvalidArgument("more tombstones than one restore takes")
    return facility_commands.run_offline(backend, spec, stdin=stdin, timeout=COMMAND_SECONDS)


def check_tombstones(items: object) -> list[dict]:
    try:
        return tombstone_format.check_all(items)
    except ValueError as e:
        raise InvalidArgument(f"tombstones: {e}") from e


def held(config: Config) -> list[dict]:
    """The backups held on this node: {"backup_id", "facility", "created", "expires", "bytes"}."""
    try:
        names = sorted(os.listdir(held_root(config)))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if not BACKUP_ID_RE.fullmatch(name):
            continue
        directory = held_root(config) / name
        if not all((directory / f).is_file() for f in FILES):
            continue  # being made or received
        try:
            manifest = read_manifest(directory)
        except (FacilityNotFound, InvalidArgument):
            continue
        fields = {k: manifest.get(k) for k in ("facility", "created", "expires")}
        if not all(isinstance(v, str) and len(v) <= 64 for v in fields.values()):
            continue
        size = sum((directory / f).stat().st_size for f in FILES)
        found.append({"backup_id": name, **fields, "bytes": size})
    return found


def drop(config: Config, backup_id: str) -> bool:
    """Remove a held backup (sealed: without its key nothing in it can be read)."""
    directory = held_dir(config, backup_id)
    existed = directory.exists()
    shutil.rmtree(directory, ignore_errors=True)
    return existed


def open_file(config: Config, backup_id: str, name: str) -> tuple[BinaryIO, int]:
    """One held file for reading, and its size; FacilityNotFound if it is not held."""
    path = held_dir(config, backup_id) / check_file(name)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (the caller streams it, then closes it)
    except FileNotFoundError as e:
        raise FacilityNotFound(f"backup {backup_id} holds no {name} here") from e
    return handle, os.fstat(handle.fileno()).st_size


def receive(config: Config, backup_id: str, name: str, chunks: Iterator[bytes], length: int) -> int:
    """Write one file of a backup handed to this node; exactly `length` bytes, or nothing."""
    if not 0 <= length <= MAX_FILE_BYTES:
        raise InvalidArgument("a backup file of that size is not taken")
    directory = held_dir(config, backup_id)
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o755, exist_ok=True)
    path = directory / check_file(name)
    partial = path.with_name(f".{name}.part")
    written = 0
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                if written > length:
                    raise InvalidArgument("more bytes than announced")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if written != length:
            raise InvalidArgument(f"{written} of {length} bytes arrived")
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written


def hold(config: Config, slug: str, held_now: bool) -> dict:
    """While a manager moves or restores the facility: 503 with Retry-After on this node's
    gateway (and every gateway forwarding to it), and the supervisor neither wakes nor routes
    it (its desired state is stopped); released, it is to run again."""
    if not state_file.state_path(config, slug).exists():
        raise FacilityNotFound(f"no facility {slug} on this node")
    st = state_file.load(config, slug)
    if held_now:
        st.desired = Desired.STOPPED
        state = RouteState.STOPPED
    else:
        st.desired, st.asleep = Desired.RUNNING, False
        state = RouteState.ASLEEP  # its first request wakes it, if the manager has not yet
    state_file.save(config, slug, st)
    generation = routes.set_route(config, slug, state)
    # Held: no request reaches the facility once this answers (its gateway serves the 503), so
    # stopping it next turns none away with a bare error. A gateway that does not say so in time
    # (none runs here) changes nothing: the caller goes on.
    applied = routes.wait_applied(config, generation, timeout=HOLD_APPLY_SECONDS)
    return {"slug": slug, "held": held_now, "applied": applied}


def key_record(
    backup_id: str, slug: str, manifest: dict, key: bytes, made: float
) -> backup_keys.BackupKey:
    """The key's record of a backup made by a node, its times bounded by our clock as a single
    host bounds them (the manifest is the facility's word): it expires at most the retention
    limit + 1 day after `made`, and was created no later than `made`."""
    if manifest.get("backup_id") != backup_id or manifest.get("facility") != slug:
        raise BackupRefused("the facility wrote a backup that is not the one asked for")
    expires_at = min(unix(manifest.get("expires")) or made, int(made) + MAX_RETENTION + DAY)
    created = unix(manifest.get("created")) or made
    return backup_keys.BackupKey(
        backup_id, slug, iso_utc(min(created, made)), iso_utc(expires_at), int(expires_at), key
    )


def key_fields(record: backup_keys.BackupKey) -> dict:
    """A key record as it travels to a manager's node API."""
    return {**record.public(), "expires_at": record.expires_at, "key": key_text(record.key)}


def unix(iso: object) -> float | None:
    """`2026-12-05T13:00:00Z` as unix seconds; None for anything else."""
    try:
        return datetime.strptime(str(iso), ISO).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def drop_expired(config: Config, now: float) -> list[str]:
    """Drop the held backups whose expiry passed (their keys are destroyed by then)."""
    gone = []
    for row in held(config):
        expires = unix(row["expires"])
        if expires is not None and expires <= now and drop(config, row["backup_id"]):
            gone.append(row["backup_id"])
    return gone

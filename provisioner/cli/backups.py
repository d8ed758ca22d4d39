"""`medcell facility backup` / `restore`: sealed backups that open only with a key kept here.

The facility's own code makes and restores them (`python -m services.facility backup|restore` in a
one-off container of its image over its volumes, without a network). The backup key is made here,
handed to that container on stdin, and kept in `$MEDCELL_HOME/backups/keys/` until the backup
expires (its retention + 1 day), never in the backup directory. Files pass through a staging
directory under MEDCELL_HOME because the facility's uid cannot write the operator's directories.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from medcell_common import strictjson
from medcell_common.interfaces import Desired, Health, RouteState
from medcell_common.rules import MAX_RETENTION
from medcell_common.times import iso_utc
from provisioner.cli.facilities import Facilities
from provisioner.host import (
    backup_keys,
    facility_commands,
    home,
    routes,
    specs,
    state_file,
    tombstones,
)
from provisioner.host.backup_keys import BackupKey
from provisioner.host.config import FACILITY_UID
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import (
    BackupRefused,
    DockerError,
    FacilityNotFound,
    InvalidArgument,
    ProvisionerError,
)
from provisioner.host.state_file import FacilityState
from provisioner.host.validation import check_name, check_retention, check_slug

FORMAT = "medcell-backup/1"
FILES = ("manifest.json", "keys.sealed", "snapshot.sealed")
BACKUP_ID = re.compile(r"^[0-9a-f]{16}$")
ISO = "%Y-%m-%dT%H:%M:%SZ"
MANIFEST_BYTES = 64 * 1024
DAY = 86400
COMMAND_TIMEOUT = 3600.0  # a snapshot of a full facility (GiBs) is written and sealed in this


class KeyedBackups:
    """What backups on one host and in a cluster share: the facilities, the clock that dates
    keys, and the tombstones kept beside the keys."""

    def __init__(
        self,
        facilities: Facilities,
        clock: Callable[[], float] = time.time,
        store: tombstones.TombstoneStore | None = None,
    ):
        self.facilities = facilities
        self.config = facilities.config
        self.progress = facilities.progress
        self.clock = clock
        # Where the tombstones of deletions outlive the facility's database (host/tombstones.py).
        self.tombstones = store or tombstones.FileTombstones(self.config)

    def _checked_record(self, slug: str, backup_id: str, manifest: dict, key: bytes) -> BackupKey:
        """The key's record of the backup the facility wrote; refused if it is another one."""
        if manifest.get("backup_id") != backup_id or manifest.get("facility") != slug:
            raise BackupRefused("the facility wrote a backup that is not the one asked for")
        return _record(backup_id, slug, manifest, key, made=self.clock())

    def _backup_of(self, slug: str, directory: Path) -> tuple[Path, dict]:
        """The backup directory and its manifest, refused unless it is a backup of `slug`."""
        check_slug(slug)
        source = Path(directory)
        manifest = read_manifest(source)
        if manifest["facility"] != slug:
            raise InvalidArgument(
                f"{source} is a backup of {manifest['facility']!r}, not of {slug!r}; a backup "
                "opens only in the facility it was made of"
            )
        return source, manifest

    def _live_key(self, backup_id: str, now: float) -> BackupKey | None:
        """The kept key of the backup, or None; one found expired is destroyed here."""
        record = backup_keys.load(self.config, backup_id)
        if record is not None and record.expires_at <= now:
            # The supervisor does this within a second; a CLI that gets here first does it too.
            backup_keys.destroy(self.config, backup_id)
            return None
        return record


class Backups(KeyedBackups):
    """Backup and restore of facilities, over the host operations (the facilities' view only
    finds them)."""

    @property
    def backend(self) -> DockerBackend:
        return self.facilities.backend

    # Waiting (for health, for a route) on the facilities' timer, which tests replace.
    @property
    def wait_clock(self) -> Callable[[], float]:
        return self.facilities.clock

    @property
    def sleep(self) -> Callable[[float], None]:
        return self.facilities.sleep

    def backup(self, slug: str, directory: Path) -> dict:
        """Write a sealed backup of the facility into `directory` (new or empty)."""
        # Nothing else changes the facility meanwhile (a delete waits until the backup is whole).
        with self.facilities.lock(check_slug(slug)):
            return self._backup(slug, directory)

    def _backup(self, slug: str, directory: Path) -> dict:
        found = self.facilities.find(slug)
        target = _fresh_target(Path(directory), self.config.home)
        self._require_image()
        backup_id, key = backup_keys.new_id(), backup_keys.new_key()
        staging = self._staging(backup_id, writable=True)
        made_target = False
        try:
            labels = found.data.labels if found.data else {}
            spec = specs.backup_spec(self.config, slug, labels, str(staging), backup_id)
            self.progress(f"backing up {slug} ...")
            manifest = facility_commands.run_offline(
                self.backend, spec, stdin=_key_line(key), timeout=COMMAND_TIMEOUT
            )
            record = self._checked_record(slug, backup_id, manifest, key)
            # The key is kept before the files are in place: a failure after this leaves an
            # unusable key until its expiry, never a backup that cannot be opened.
            key_path = backup_keys.save(self.config, record)
            try:
                made_target = _make_dir(target)
                for name in FILES:
                    _copy_private(staging / name, target / name)
            except OSError as e:
                backup_keys.destroy(self.config, backup_id)
                if made_target:
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    for name in FILES:
                        (target / name).unlink(missing_ok=True)
                raise ProvisionerError(f"cannot write the backup into {target}: {e}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {
            **record.public(),
            "slug": slug,
            "directory": str(target),
            "key_file": str(key_path),
            "retention": manifest.get("retention"),
        }

    def kept(self, slug: str | None = None) -> list[dict]:
        """The backups this installation can still open (their keys), soonest expiry first."""
        if slug is not None:
            check_slug(slug)
        return [
            k.public()
            for k in backup_keys.all_keys(self.config)
            if (slug is None or k.facility == slug) and k.expires_at > self.clock()
        ]

    def restore(self, slug: str, directory: Path, replace: bool = False) -> dict:
        """Bring a facility back from a backup: over its current data (`replace`), or recreated."""
        source, manifest = self._backup_of(slug, directory)
        with self.facilities.lock(slug):
            record = self._key_for(manifest)
            try:
                found = self.facilities.find(slug)
            except FacilityNotFound:
                found = None
            if found is not None and not replace:
                raise ProvisionerError(
                    f"restoring replaces all current data of {slug} with the backup's; add --yes"
                )
            self._require_image()
            staging = self._staging(record.backup_id, writable=False)
            try:
                for name in FILES:
                    _copy_readable(source / name, staging / name)
                if found is None:
                    result = self._recreate(slug, manifest, record, staging)
                else:
                    result = self._replace(slug, found, record, staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return {
            "slug": slug,
            "backup_id": record.backup_id,
            "created": record.created,
            "expires": record.expires,
            "recreated": found is None,
            "conversations": result.get("conversations"),
            "expired": result.get("expired"),
            "reapplied": result.get("reapplied"),
            "status": self.facilities.find(slug).status,
        }

    # restoring

    def _key_for(self, manifest: dict) -> BackupKey:
        """The backup's key from this installation; destroyed (and refused) once it expired."""
        backup_id, now = manifest["backup_id"], self.clock()
        record = self._live_key(backup_id, now)
        if record is None:
            if _unix(manifest) <= now:
                raise BackupRefused(
                    f"backup {backup_id} of {manifest['facility']} expired at "
                    f"{manifest['expires']}; its key is destroyed, so it can never be restored"
                )
            raise BackupRefused(
                f"this installation holds no key for backup {backup_id} (made by another "
                f"installation, or its key file under {backup_keys.keys_dir(self.config)} is gone)"
            )
        if record.facility != manifest["facility"]:
            raise BackupRefused(f"the key of backup {backup_id} belongs to another facility")
        return record

    def _replace(self, slug: str, found, record: BackupKey, staging: Path) -> dict:
        """Stop the facility, restore over its volumes, start it again."""
        names = self.config.facility(slug)
        self._route(slug, RouteState.STOPPED)  # 503 with Retry-After meanwhile
        if found.container and found.container.status in ("running", "restarting", "paused"):
            self.backend.stop(names.container)
        labels = found.data.labels if found.data else {}
        try:
            result = self._run_restore(slug, labels, record, staging)
        except ProvisionerError:
            # Everything is checked before the first change, so the old data is still whole.
            try:
                self._start(slug, found.state)
            except ProvisionerError as e:
                self.progress(f"{slug} did not start again after the failed restore: {e}")
            raise
        self._start(slug, found.state)
        return result

    def _recreate(self, slug: str, manifest: dict, record: BackupKey, staging: Path) -> dict:
        """Make the facility's volumes anew, restore into them, then its container."""
        names = facility = self.config.facility(slug)
        name = check_name(str(manifest.get("name") or slug))
        retention = check_retention(str(manifest.get("retention") or "7d"))
        meta = {"name": name, "retention": retention, "created": iso_utc()}
        labels = self.config.labels(facility=slug, role="data", **meta)
        try:
            self.backend.create_volume(names.data_volume, labels)
            self.backend.create_volume(
                names.keys_volume, self.config.labels(facility=slug, role="keys")
            )
            result = self._run_restore(slug, labels, record, staging)
            image_id = self.backend.image_id(self.config.facility_image)
            home.ensure_socket_dir(facility)
            self.backend.create_container(
                specs.facility_spec(self.config, facility, name, retention, image_id)
            )
            self._start(slug, FacilityState())
        except BaseException:
            self.backend.remove_container(names.container)
            self.backend.remove_volume(names.keys_volume)
            self.backend.remove_volume(names.data_volume)
            self._route(slug, None)
            state_file.remove(self.config, slug)
            shutil.rmtree(facility.socket_dir, ignore_errors=True)
            raise
        return result

    def _route(self, slug: str, state: str | None) -> None:
        routes.apply_route(
            self.config, self.backend, slug, state, self.progress, self.wait_clock, self.sleep
        )

    def _run_restore(
        self, slug: str, labels: dict[str, str], record: BackupKey, staging: Path
    ) -> dict:
        spec = specs.restore_spec(self.config, slug, labels, str(staging))
        self.progress(f"restoring {slug} from backup {record.backup_id} ...")
        # The facility is stopped (or gone): no deletion can drop a tombstone after this.
        tombstones.collect(self.config, self.tombstones, slug)
        since = tombstones.for_restore(self.tombstones, slug, record)
        # Deleted after the backup was made: the facility deletes them again, each with its
        # receipt, before it starts (services/facility/core/tombstones.py).
        stdin = _key_line(record.key) + strictjson.dumps({"tombstones": since}).encode() + b"\n"
        return facility_commands.run_offline(
            self.backend, spec, stdin=stdin, timeout=COMMAND_TIMEOUT
        )

    def _start(self, slug: str, st: FacilityState) -> None:
        """Start the facility's container and route it once it answers: a restore ends running."""
        facility = self.config.facility(slug)
        home.ensure_socket_dir(facility)
        self.backend.start(facility.container)
        facility_commands.wait_facility(
            self.config,
            self.backend,
            slug,
            self.config.health_timeout,
            progress=self.progress,
            sleep=self.sleep,
            clock=self.wait_clock,
        )
        st.desired, st.asleep, st.wake_at, st.slept_at = Desired.RUNNING, False, None, None
        st.health, st.error = Health.OK, None
        state_file.save(self.config, slug, st)
        self._route(slug, RouteState.RUNNING)

    # files and images

    def _require_image(self) -> None:
        # A backup is made and restored by the facility's own code: its image must be there.
        if self.backend.image_id(self.config.facility_image) is None:
            raise DockerError(f"image {self.config.facility_image} is missing; run `medcell up`")

    def _staging(self, backup_id: str, writable: bool) -> Path:
        """A directory under MEDCELL_HOME for the one-off container (0700 home keeps others out)."""
        path = backup_keys.staging_dir(self.config, backup_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        if writable and os.geteuid() == 0:
            os.chown(path, FACILITY_UID, FACILITY_UID)
        elif writable:
            os.chmod(path, 0o777)  # we cannot give it to uid 10001; the home is still 0700
        else:
            os.chmod(path, 0o755)
        return path


def read_manifest(directory: Path) -> dict:
    """The manifest of a backup directory (in the clear; the facility checks it is authentic)."""
    try:
        # Written by the facility's code: strict JSON, small (it names ids and times only).
        with open(directory / "manifest.json", "rb") as f:
            manifest = strictjson.loads(f.read(MANIFEST_BYTES + 1), MANIFEST_BYTES)
    except FileNotFoundError as e:
        raise InvalidArgument(f"{directory} holds no medcell backup (no manifest.json)") from e
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{directory}/manifest.json is unreadable: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidArgument(f"{directory}/manifest.json is not a {FORMAT} manifest")
    if not BACKUP_ID.match(str(manifest.get("backup_id"))):
        raise InvalidArgument(f"{directory}/manifest.json has no valid backup id")
    check_slug(str(manifest.get("facility")))
    _unix(manifest)
    for name in FILES:
        if not (directory / name).is_file():
            raise InvalidArgument(f"{directory} is incomplete: {name} is missing")
    return manifest


def _record(backup_id: str, slug: str, manifest: dict, key: bytes, made: float) -> BackupKey:
    """The key's record, its times bounded by our clock: the manifest is the facility's word.

    A backup is at most `made` old (the facility's command had ended), so its key lives at most
    the retention limit + 1 day from then, whatever expiry the manifest names; a `created` that
    is malformed or later than `made` is replaced by `made`.
    """
    expires_at = min(_unix(manifest), int(made) + MAX_RETENTION + DAY)
    try:
        created = datetime.strptime(str(manifest.get("created")), ISO)
        created_at = created.replace(tzinfo=UTC).timestamp()
    except ValueError:
        created_at = made
    return BackupKey(
        backup_id, slug, iso_utc(min(created_at, made)), iso_utc(expires_at), expires_at, key
    )


def _unix(manifest: dict) -> int:
    try:
        when = datetime.strptime(str(manifest["expires"]), ISO)
    except (KeyError, ValueError) as e:
        raise InvalidArgument("the backup's manifest has no valid expiry") from e
    return int(when.replace(tzinfo=UTC).timestamp())


def _key_line(key: bytes) -> bytes:
    return b64encode(key) + b"\n"


def _fresh_target(target: Path, home: Path) -> Path:
    """A new or empty directory outside MEDCELL_HOME: a backup never lies beside its key."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(f"{target} must be a new or empty directory")
    resolved, home = target.resolve(), home.resolve()
    if resolved == home or home in resolved.parents or resolved in home.parents:
        raise InvalidArgument(
            f"{target} is inside MEDCELL_HOME ({home}), where the backup keys are kept; "
            "a backup must never lie beside its key"
        )
    return target.absolute()


def _make_dir(target: Path) -> bool:
    """Create the backup directory (0700); True if it was created here."""
    try:
        target.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return False
    return True


def _copy_private(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())


def _copy_readable(source: Path, target: Path) -> None:
    # Readable by the facility's uid inside the one-off container; the staging root is 0700.
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)

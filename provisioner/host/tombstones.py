"""Tombstones of deleted conversations, kept beside the backup keys for as long as a backup that
still holds those conversations can be restored.

A facility drops one file per deletion into `tombstones/` of its socket directory (on the host,
outside its volumes; see services/facility/core/tombstones.py), synchronously, right after the
deletion commits: nothing has to be awake or reachable for a tombstone to outlive the database.
`collect` moves those files into the store here (the supervisor every minute, a restore before it
starts), treating the facility as hostile: regular files only, bounded, strictly parsed, each
tombstone checked. A restore is handed the tombstones newer than its backup.

The store is one small interface, `TombstoneStore`; `FileTombstones` keeps one file per facility
in `$MEDCELL_HOME/backups/tombstones/` (0600), the single-host implementation. A tombstone goes
once it is older than every restorable backup of its facility (backup keys live at most the
retention limit + 1 day), and with the facility itself.

In a cluster every manager's store holds every node's tombstones, so they outlive the loss of a
facility's node: the node's supervisor collects into `ReplicatingTombstones`, which also keeps
what it collected in an outbox (`outbox/` below the store) until every manager took it through
its node API (supervisor/tombstone_push.py). A manager does not know the backups another one
made, so there a tombstone is kept for as long as any backup can live (BACKUP_LIFETIME).
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from medcell_common import strictjson
from medcell_common import tombstones as fmt
from medcell_common.rules import MAX_RETENTION
from provisioner.host import backup_keys
from provisioner.host.config import Config
from provisioner.host.home import write_json_atomic
from provisioner.host.validation import SLUG_RE

# A backup being made has no key yet: keep what it may still hold for longer than it can take.
IN_FLIGHT_SECONDS = 2 * 3600
# A tombstone a second older than a backup's `created` may still be newer than its snapshot.
MARGIN_SECONDS = 2
MAX_FILES_PER_COLLECT = 10_000
STORE_FILE = re.compile(r"^(.+)\.json$")
# The longest a backup can be restored: the retention limit + 1 day after it was made. No backup
# made before a deletion older than this opens any more, wherever its key is kept.
BACKUP_LIFETIME = MAX_RETENTION + 86400


class TombstoneStore(Protocol):
    """Where tombstones outlive every facility database (one host's files; a cluster's managers)."""

    def add(self, slug: str, items: list[dict]) -> int:
        """Keep these (checked) tombstones; returns how many were new."""

    def since(self, slug: str, when: float) -> list[dict]:
        """The facility's tombstones of deletions at or after `when` (unix seconds)."""

    def prune(self, slug: str, keep_from: float | None) -> int:
        """Forget tombstones older than `keep_from` (all when None); returns how many went."""

    def slugs(self) -> list[str]:
        """The facilities that have tombstones here."""


class FileTombstones:
    """The single-host store: `$MEDCELL_HOME/backups/tombstones/<slug>.json`."""

    def __init__(self, config: Config, directory: Path | None = None):
        self.directory = directory or config.home / "backups" / "tombstones"

    def add(self, slug: str, items: list[dict]) -> int:
        with self._changing(slug) as kept:
            known = {t["mark"] for t in kept}
            new = [t for t in fmt.check_all(items) if t["mark"] not in known]
            kept.extend({t["mark"]: t for t in new}.values())
            return len({t["mark"] for t in new})

    def since(self, slug: str, when: float) -> list[dict]:
        return [t for t in self._read(slug) if t["deleted_at"] >= when]

    def prune(self, slug: str, keep_from: float | None) -> int:
        with self._changing(slug) as kept:
            before = len(kept)
            kept[:] = [t for t in kept if keep_from is not None and t["deleted_at"] >= keep_from]
            return before - len(kept)

    def forget(self, slug: str, marks: set[str]) -> int:
        """Forget the tombstones with these marks; returns how many went."""
        with self._changing(slug) as kept:
            before = len(kept)
            kept[:] = [t for t in kept if t["mark"] not in marks]
            return before - len(kept)

    def slugs(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = (STORE_FILE.match(n) for n in sorted(names))
        return [m.group(1) for m in found if m and SLUG_RE.match(m.group(1))]

    def _path(self, slug: str) -> Path:
        if not SLUG_RE.match(slug):
            raise ValueError(f"not a facility slug: {slug!r}")
        return self.directory / f"{slug}.json"

    def _read(self, slug: str) -> list[dict]:
        try:
            return fmt.check_all(strictjson.loads(self._path(slug).read_bytes())["tombstones"])
        except FileNotFoundError:
            return []

    @contextmanager
    def _changing(self, slug: str) -> Iterator[list[dict]]:
        """The facility's tombstones to change in place, under a lock, written back whole."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kept = self._read(slug)
            before = list(kept)
            yield kept
            if kept == before:
                return
            if kept:
                write_json_atomic(self._path(slug), {"tombstones": kept}, mode=0o600)
            else:
                self._path(slug).unlink(missing_ok=True)


def outbox(config: Config) -> FileTombstones:
    """What this node collected and not every manager has taken yet (cluster mode)."""
    return FileTombstones(config, config.home / "backups" / "tombstones" / "outbox")


class ReplicatingTombstones:
    """A cluster node's store: this host's, and an outbox for the managers of what is added."""

    def __init__(self, config: Config):
        self.local, self.outbox = FileTombstones(config), outbox(config)

    def add(self, slug: str, items: list[dict]) -> int:
        new = self.local.add(slug, items)
        self.outbox.add(slug, items)  # the same again is harmless: every manager dedups
        return new

    def since(self, slug: str, when: float) -> list[dict]:
        return self.local.since(slug, when)

    def prune(self, slug: str, keep_from: float | None) -> int:
        return self.local.prune(slug, keep_from)

    def slugs(self) -> list[str]:
        return self.local.slugs()


def drop_dir(config: Config, slug: str) -> Path:
    """Where the facility drops its tombstones (a folder of its socket directory)."""
    return config.facility_socket_dir(slug) / fmt.DROP_DIR


def collect(config: Config, store: TombstoneStore, slug: str) -> int:
    """Move the facility's dropped tombstones into the store; returns how many were new.

    A file is removed only once what it holds is kept; one that is not a valid drop file (too
    large, not a regular file, malformed) is removed unread: the facility wrote it wrong.
    """
    directory = drop_dir(config, slug)
    try:
        names = sorted(os.listdir(directory))[:MAX_FILES_PER_COLLECT]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    new = 0
    for name in names:
        if not fmt.DROP_FILE_RE.fullmatch(name):
            continue
        path = directory / name
        items = _read_drop(path)
        if items:
            new += store.add(slug, items)
        path.unlink(missing_ok=True)
    return new


def collect_all(config: Config, store: TombstoneStore) -> int:
    """Collect every facility's dropped tombstones."""
    try:
        slugs = [s for s in os.listdir(config.run_dir / "facilities") if SLUG_RE.match(s)]
    except FileNotFoundError:
        return 0
    return sum(collect(config, store, slug) for slug in sorted(slugs))


def for_restore(store: TombstoneStore, slug: str, backup: backup_keys.BackupKey) -> list[dict]:
    """The tombstones a restore of this backup must re-apply: those newer than the backup."""
    return store.since(slug, _unix(backup.created) - MARGIN_SECONDS)


def expire(config: Config, store: TombstoneStore, now: float, cluster: bool = False) -> int:
    """Forget every tombstone older than each restorable backup of its facility; how many went.

    `cluster`: backups of a facility may be kept on other managers, so keep what any backup
    could still need (BACKUP_LIFETIME)."""
    if cluster:
        keep_from = now - BACKUP_LIFETIME - MARGIN_SECONDS
        return sum(store.prune(slug, keep_from) for slug in store.slugs())
    oldest: dict[str, float] = {}
    for key in backup_keys.all_keys(config):
        if key.expires_at > now:
            created = _unix(key.created)
            oldest[key.facility] = min(oldest.get(key.facility, created), created)
    gone = 0
    for slug in store.slugs():
        keep_from = min(oldest.get(slug, now), now - IN_FLIGHT_SECONDS) - MARGIN_SECONDS
        gone += store.prune(slug, keep_from)
    return gone


def destroy_for(config: Config, slug: str) -> int:
    """Forget every tombstone of a facility that is being deleted (with its backups' keys),
    dropped or kept; returns how many were kept."""
    directory = drop_dir(config, slug)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        names = []
    for name in names:
        (directory / name).unlink(missing_ok=True)
    outbox(config).prune(slug, None)
    return FileTombstones(config).prune(slug, None)


def _read_drop(path: Path) -> list[dict]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > fmt.MAX_DROP_BYTES:
            return []
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(fmt.MAX_DROP_BYTES + 1)
        body = strictjson.loads(data, fmt.MAX_DROP_BYTES)
        if not isinstance(body, dict) or set(body) != {"tombstones"}:
            return []
        return fmt.check_all(body["tombstones"])
    except ValueError:
        return []
    finally:
        os.close(fd)


def _unix(iso: str) -> float:
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0  # a key file with no valid time guards everything: keep it all

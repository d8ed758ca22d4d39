"""Self-expiring backups: a consistent snapshot and the KEKs it needs, sealed under a backup key.

The backup key is made by the provisioner, kept only on the host (never beside the backup) and
destroyed there when the backup expires, so no copy of a backup opens after that. A backup holds:

- `manifest.json` — in the clear: format, backup id, facility, created, expires, chunk count;
  it is bound to the rest as associated data, so editing it (e.g. `expires`) breaks the backup.
- `keys.sealed` — the KEKs the snapshot needs (live KEKs rotate daily and old ones are destroyed,
  so a backup must carry its own) and the snapshot's digest, sealed under the backup key.
- `snapshot.sealed` — the database made by `VACUUM INTO` (a consistent copy even under load),
  sealed in chunks under the backup key, so not even its metadata is readable without the key.
"""

import hashlib
import json
import os
import re
import sqlite3
from base64 import b64decode, b64encode
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from medcell_common.rules import format_duration
from medcell_common.times import iso_utc
from services.facility.core import (
    crypto,
    migrations,
    open_facility,
    retention,
    sealed_file,
    store,
)
from services.facility.core.config import Config
from services.facility.core.errors import BackupError, CryptoError, KeyDestroyed
from services.facility.core.keys import Keyring
from services.facility.core.settings import retention_seconds

FORMAT = "medcell-backup/1"
MANIFEST, KEYS, SNAPSHOT = "manifest.json", "keys.sealed", "snapshot.sealed"
BACKUP_ID = re.compile(r"^[0-9a-f]{16}$")
SNAPSHOT_ATTEMPTS = 3
GRACE_SECONDS = 86400  # a backup outlives the newest conversation in it by one day, no more
# A restored facility starts with no sessions: every staff member and patient signs in again.
SESSION_TABLES = ("staff_sessions", "patient_sessions", "throttle")


def make(config: Config, clock: Callable[[], int], key: bytes, backup_id: str, out: Path) -> dict:
    """Write a backup of this facility into `out`; returns its manifest."""
    _check_id(backup_id)
    if not config.database.exists():
        raise BackupError("this facility has no database to back up")
    conn = store.connect(config.database)
    copy = config.data_dir / f".backup-{backup_id}.db"
    try:
        keks = _snapshot(config, clock, conn, copy)
        _drop_sessions(copy)
        created = clock() // 1_000_000
        keep = retention_seconds(conn, config.retention)
        size = copy.stat().st_size
        manifest = {
            "format": FORMAT,
            "backup_id": backup_id,
            "facility": config.facility,
            "name": config.facility_name,
            "created": iso_utc(created),
            "expires": iso_utc(created + keep + GRACE_SECONDS),
            "retention": format_duration(keep),
            "schema_version": _schema_version(copy),
            "chunks": sealed_file.chunks(size),
        }
        digest = sealed_file.seal(
            key, copy, out / SNAPSHOT, manifest["chunks"], _chunk_aad(config.facility, backup_id)
        )
        payload = {
            "keks": {str(v): b64encode(k).decode() for v, k in keks.items()},
            "snapshot_sha256": digest,
            "snapshot_bytes": size,
        }
        tombstone_key = _tombstone_key(config, clock)
        if tombstone_key is not None:
            # A restored facility must mark ids as this one does, or its tombstones match nothing.
            payload["tombstone_key"] = b64encode(tombstone_key).decode()
        sealed = crypto.seal(key, json.dumps(payload).encode(), _keys_aad(config, manifest))
        sealed_file.write(out / KEYS, sealed)
        sealed_file.write(out / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    except sqlite3.Error as e:
        raise BackupError(f"the snapshot failed: {e}") from e
    finally:
        conn.close()
        sealed_file.destroy(copy)
    return manifest


def _snapshot(
    config: Config, clock: Callable[[], int], conn: sqlite3.Connection, copy: Path
) -> dict[int, bytes]:
    """Copy the database, then the KEKs it names; again if a rotation destroyed one in between.

    The key lock is held only while the KEKs are read, never during the copy: a rotation that
    waited for a long copy would hold up the deletion job behind it. Rotations are daily, so a
    second attempt is rare and a third almost impossible.
    """
    for _ in range(SNAPSHOT_ATTEMPTS):
        conn.execute("VACUUM INTO ?", (str(copy),))
        versions = _live_versions(copy)
        keyring = Keyring(config.key_dir, config.facility, clock)
        with keyring.frozen():
            try:
                return keyring.export(versions)
            except KeyDestroyed:
                pass
        sealed_file.destroy(copy)
    raise BackupError("the keys kept rotating while the snapshot was taken; try again")


def read_manifest(directory: Path) -> dict:
    """The manifest of a backup directory, checked for shape (not yet for authenticity)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{directory} holds no readable medcell backup ({MANIFEST})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{directory / MANIFEST} is not a {FORMAT} manifest")
    _check_id(str(manifest.get("backup_id")))
    return manifest


def expires_at(manifest: dict) -> int:
    """The manifest's expiry in unix seconds."""
    try:
        return int(
            datetime.strptime(manifest["expires"], "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=UTC)
            .timestamp()
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BackupError("the backup's manifest has no valid expiry") from e


def restore(
    config: Config,
    clock: Callable[[], int],
    key: bytes,
    directory: Path,
    tombstones: list[dict] | None = None,
) -> dict:
    """Replace this facility's data and keys with the backup's, then delete what expired since
    and what the tombstones say was deleted since.

    Everything is decrypted and checked before anything of the facility is touched; the app must
    not be running meanwhile (the provisioner runs this in a one-off container).
    """
    manifest = read_manifest(directory)
    if manifest.get("facility") != config.facility:
        raise BackupError(
            f"this is a backup of {manifest.get('facility')!r}, not of {config.facility!r}"
        )
    if expires_at(manifest) <= clock() // 1_000_000:
        raise BackupError(f"the backup expired at {manifest['expires']}")
    if not isinstance(manifest.get("schema_version"), int) or manifest["schema_version"] > len(
        migrations.MIGRATIONS
    ):
        raise BackupError("the backup was made by a newer medcell; upgrade first")
    try:
        payload = json.loads(
            crypto.unseal(key, (directory / KEYS).read_bytes(), _keys_aad(config, manifest))
        )
        keks = {int(v): b64decode(k) for v, k in payload["keks"].items()}
        tombstone_key = b64decode(payload["tombstone_key"]) if "tombstone_key" in payload else None
        if tombstone_key is not None and len(tombstone_key) != crypto.KEY_BYTES:
            raise ValueError("the tombstone key is not 32 bytes")
    except (OSError, CryptoError, ValueError, KeyError, TypeError) as e:
        raise BackupError("the backup does not open with its key (damaged or altered)") from e
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = config.data_dir / f".restore-{manifest['backup_id']}.db"
    try:
        digest = _open_snapshot(key, config.facility, manifest, directory / SNAPSHOT, staged)
        if digest != payload.get("snapshot_sha256"):
            raise BackupError("the backup's snapshot does not match its digest")
        _check_integrity(staged)
        if set(_live_versions(staged)) - set(keks):
            raise BackupError("the backup lacks a key version its snapshot needs")
        # From here on the facility's current data is replaced: its keys are shredded first.
        keyring = Keyring(config.key_dir, config.facility, clock)
        keyring.replace_all(keks)
        if tombstone_key is not None:
            keyring.replace_tombstone_key(tombstone_key)
        for suffix in ("-wal", "-shm"):
            # A WAL left by the old database must never be replayed onto the restored one.
            Path(f"{config.database}{suffix}").unlink(missing_ok=True)
        os.replace(staged, config.database)
    finally:
        sealed_file.destroy(staged)
    return {
        **_settle(config, clock, tombstones or []),
        "backup_id": manifest["backup_id"],
        "created": manifest["created"],
    }


def _settle(config: Config, clock: Callable[[], int], tombstones: list[dict]) -> dict:
    """Migrate the restored database, delete again what was deleted after the backup, and run
    the deletion job once, before anyone is served."""
    facility = open_facility(config, clock)
    conn = facility.store.conn()
    try:
        _clear_sessions(conn)
        reapplied = facility.tombstones.reapply(conn, facility.conversations.delete, tombstones)
        swept = retention.sweep(
            conn, facility.conversations, facility.keyring, config.key_rotation_seconds
        )
        store.checkpoint(conn)
        left = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        version = conn.execute(
            "SELECT max(version) FROM kek_versions WHERE destroyed_at IS NULL"
        ).fetchone()[0]
    finally:
        facility.store.close()
    return {
        "facility": config.facility,
        "conversations": left,
        "expired": swept["expired"],
        "reapplied": reapplied,
        "key_version": version,
    }


# -- sealing --------------------------------------------------------------------------------


def _tombstone_key(config: Config, clock: Callable[[], int]) -> bytes | None:
    try:
        return Keyring(config.key_dir, config.facility, clock).tombstone_key()
    except KeyDestroyed:
        return None  # made before tombstones existed: its restore marks with the key it finds


def _open_snapshot(key: bytes, facility: str, manifest: dict, source: Path, target: Path) -> str:
    count = manifest.get("chunks")
    if not isinstance(count, int) or count < 1:
        raise BackupError("the backup's manifest has no valid chunk count")
    try:
        return sealed_file.unseal(
            key, source, target, count, _chunk_aad(facility, manifest["backup_id"])
        )
    except OSError as e:
        raise BackupError(f"the backup's snapshot cannot be read: {e.strerror}") from e
    except CryptoError as e:
        raise BackupError("the backup's snapshot does not open (damaged or altered)") from e


def _chunk_aad(facility: str, backup_id: str) -> Callable[[int, int], bytes]:
    return lambda seq, count: crypto.aad(facility, "backup", backup_id, f"snapshot/{seq}/{count}")


def _keys_aad(config: Config, manifest: dict) -> bytes:
    # The whole manifest is authenticated with the keys: altering any field of it fails.
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    field = "keys/" + hashlib.sha256(canonical).hexdigest()
    return crypto.aad(config.facility, "backup", manifest["backup_id"], field)


# -- the snapshot's database ----------------------------------------------------------------


def _live_versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT version FROM kek_versions WHERE destroyed_at IS NULL")
        return sorted(r[0] for r in rows)
    finally:
        conn.close()


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _drop_sessions(path: Path) -> None:
    """Sessions and throttles never go into a backup (their hashes would outlive logouts)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # secure_delete zeroes the rows in place; no VACUUM, which would need a temporary copy
        # of the whole database in the container's small /tmp.
        conn.execute("PRAGMA secure_delete=ON")
        _clear_sessions(conn)
    finally:
        conn.close()


def _clear_sessions(conn: sqlite3.Connection) -> None:
    with store.write(conn):
        for name in SESSION_TABLES:
            conn.execute(f"DELETE FROM {name}")


def _check_integrity(path: Path) -> None:
    try:
        conn = sqlite3.connect(path)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise BackupError(f"the backup's snapshot is no database: {e}") from e
    if result != "ok":
        raise BackupError("the backup's snapshot fails SQLite's integrity check")


def _check_id(backup_id: str) -> None:
    if not BACKUP_ID.match(backup_id):
        raise BackupError("a backup id is 16 hexadecimal digits")

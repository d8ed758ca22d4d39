"""Backup keys: one per backup, kept only in `$MEDCELL_HOME/backups/keys/` and destroyed at expiry.

A backup directory holds nothing that opens it; its key lives here, 0600, beside nothing of the
data. Once `expires` has passed the key is overwritten and removed (by the supervisor, which always
runs, and by the CLI before any restore), so no copy of the backup anywhere can be decrypted again.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from base64 import b64decode, b64encode
from dataclasses import dataclass
from pathlib import Path

from medcell_common import strictjson
from provisioner.host.config import Config
from provisioner.host.home import write_json_atomic

KEY_FILE = re.compile(r"^([0-9a-f]{16})\.json$")


@dataclass(frozen=True)
class BackupKey:
    backup_id: str
    facility: str
    created: str  # ISO 8601 UTC, as in the backup's manifest
    expires: str
    expires_at: int  # unix seconds
    key: bytes

    def public(self) -> dict:
        """Everything but the key itself."""
        return {
            "backup_id": self.backup_id,
            "facility": self.facility,
            "created": self.created,
            "expires": self.expires,
        }


def keys_dir(config: Config) -> Path:
    return config.home / "backups" / "keys"


def new_id() -> str:
    return secrets.token_hex(8)


def new_key() -> bytes:
    """A fresh random 256-bit backup key (the facility seals with it; nobody else uses it)."""
    return secrets.token_bytes(32)


def save(config: Config, record: BackupKey) -> Path:
    """Keep a backup's key, owner-only."""
    directory = keys_dir(config)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{record.backup_id}.json"
    data = {
        **record.public(),
        "expires_at": record.expires_at,
        "key": b64encode(record.key).decode(),
    }
    write_json_atomic(path, data, mode=0o600)
    return path


def load(config: Config, backup_id: str) -> BackupKey | None:
    """A backup's key, or None when this installation has none (expired, or made elsewhere)."""
    path = keys_dir(config) / f"{backup_id}.json"
    if not KEY_FILE.match(path.name):
        return None
    try:
        return _parse(backup_id, strictjson.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged key file opens nothing


def all_keys(config: Config) -> list[BackupKey]:
    """Every backup key kept here, oldest expiry first (unreadable files are skipped)."""
    try:
        names = sorted(os.listdir(keys_dir(config)))
    except FileNotFoundError:
        return []
    found = [load(config, m.group(1)) for m in map(KEY_FILE.match, names) if m]
    return sorted((k for k in found if k is not None), key=lambda k: k.expires_at)


def staging_dir(config: Config, backup_id: str) -> Path:
    """Where a backup's sealed files wait while a command moves them (cli/backups.py)."""
    return config.home / "backups" / "staging" / backup_id


def destroy(config: Config, backup_id: str) -> bool:
    """Overwrite and remove a backup's key (and any staged files a crash left); True if a key."""
    if not KEY_FILE.match(f"{backup_id}.json"):
        return False
    shutil.rmtree(staging_dir(config, backup_id), ignore_errors=True)
    path = keys_dir(config) / f"{backup_id}.json"
    try:
        size = path.stat().st_size
        with open(path, "r+b", buffering=0) as f:
            f.write(os.urandom(size))
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def destroy_expired(config: Config, now: float) -> list[BackupKey]:
    """Destroy every key whose backup has expired; returns them (without further use)."""
    gone = [k for k in all_keys(config) if k.expires_at <= now]
    return [k for k in gone if destroy(config, k.backup_id)]


def destroy_for(config: Config, facility: str) -> int:
    """Destroy the keys of every backup of one facility (it is being deleted); how many."""
    return sum(destroy(config, k.backup_id) for k in all_keys(config) if k.facility == facility)


def next_expiry(config: Config) -> float | None:
    """When the next kept key expires (unix seconds), None when there is none."""
    keys = all_keys(config)
    return keys[0].expires_at if keys else None


def _parse(backup_id: str, raw: dict) -> BackupKey:
    key = b64decode(raw["key"], validate=True)
    if len(key) != 32:
        raise ValueError("backup key is not 32 bytes")
    return BackupKey(
        backup_id=backup_id,
        facility=str(raw["facility"]),
        created=str(raw["created"]),
        expires=str(raw["expires"]),
        # Strict: an expiry of NaN or a bool would be a key that never expires.
        expires_at=strictjson.integer(raw["expires_at"], "expires_at"),
        key=key,
    )

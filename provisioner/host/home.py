"""MEDCELL_HOME, the provisioner's home folder: its locks, the facilities' socket folders, the
deletion log, and the atomic JSON writer for what it keeps there."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medcell_common.files import write_atomic
from medcell_common.times import iso_utc
from provisioner.host.config import FACILITY_UID, Config, Facility

DELETION_LOG = "deletions.log"


def ensure_home(config: Config) -> Path:
    """Create MEDCELL_HOME, private to the operator."""
    config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return config.home


def _locks_dir(config: Config) -> Path:
    ensure_home(config)
    config.locks_dir.mkdir(mode=0o700, exist_ok=True)
    return config.locks_dir


def ensure_socket_dir(facility: Facility) -> None:
    """The host directory of the facility's socket: the app (uid 10001) must create it there."""
    directory = facility.socket_dir
    directory.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    directory.mkdir(mode=0o711, exist_ok=True)
    if os.geteuid() == 0:
        try:
            os.chown(directory, FACILITY_UID, FACILITY_UID)
            os.chmod(directory, 0o711)
            return
        except PermissionError:
            # Root without CAP_CHOWN: a root operator's supervisor (cap_drop ALL), which makes
            # a facility's folders on a cluster node for the node API.
            pass
    # We cannot give it to uid 10001; so anyone may create the socket in it (the socket is
    # trusted only when owned by the facility's uid: host/facility_http.py).
    os.chmod(directory, 0o777)


@contextmanager
def routes_lock(config: Config) -> Iterator[None]:
    """Serialise rewrites of routes.json so a slow writer cannot undo a newer one."""
    with open(_locks_dir(config) / "routes.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_json_atomic(path: Path, data: object, mode: int = 0o644) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN or Infinity in a state file would be read back as a deadline that is never due.
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(path, text, mode)


def log_deletion(config: Config, slug: str) -> None:
    """Append a content-free line: which slug was deleted, and when."""
    with open(ensure_home(config) / DELETION_LOG, "a") as handle:
        handle.write(f"{iso_utc()} deleted {slug}\n")

"""Tombstones: what a deletion leaves outside the database, so that no restore brings it back.

Every deletion of a conversation (expiry, patient, staff, wipe) drops, right after its commit, a
file in the tombstone folder (MEDCELL_TOMBSTONE_DIR: a folder in the facility's socket directory,
which lives on the host, not in a volume). Each holds `{"mark", "deleted_at", "reason"}` per
conversation (see medcell_common/tombstones): the mark is the conversation id under the tombstone
key, a key beside the KEKs that every backup carries; no title, name, token or id. The provisioner
collects the files into its own store beside the backup keys and hands a restore the tombstones
newer than its backup; `reapply` then deletes, with a receipt each, every restored conversation
whose mark is among them, before the facility answers anyone.
"""

import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from medcell_common import tombstones as fmt
from medcell_common.files import write_atomic
from services.facility.core import crypto
from services.facility.core.keys import Keyring

log = logging.getLogger("medcell.tombstones")


class Tombstones:
    """Marks conversation ids and drops the tombstones of deletions (nowhere when no folder)."""

    def __init__(self, keyring: Keyring, directory: Path | None, clock: Callable[[], int]):
        self.keyring = keyring
        self.directory = directory
        self.clock = clock

    def mark(self, conv_id: str) -> str:
        return crypto.mark(self.keyring.tombstone_key(), conv_id.encode())

    def drop(self, conv_ids: list[str] | tuple[str, ...], reason: str) -> None:
        """Leave the tombstones of conversations whose deletion has just committed."""
        if self.directory is None or not conv_ids:
            return
        when = self.clock() // 1_000_000
        items = [{"mark": self.mark(c), "deleted_at": when, "reason": reason} for c in conv_ids]
        if not self.directory.is_dir():
            # Private when the socket directory is ours (the provisioner runs as root and gave it
            # to us); else the operator's uid must list and remove what we drop, as it does there.
            mine = self.directory.parent.stat().st_uid == os.geteuid()
            self.directory.mkdir(exist_ok=True)
            self.directory.chmod(0o700 if mine else 0o777)
        path = self.directory / f"{secrets.token_hex(16)}.json"
        # Written whole and renamed: the collector never reads half a file.
        write_atomic(path, json.dumps({"tombstones": items}, separators=(",", ":")), 0o644)

    def reapply(self, conn: sqlite3.Connection, delete: Callable, items: list[dict]) -> int:
        """Delete each conversation a tombstone names (`delete(conn, id, reason)` signs its
        receipt); returns how many went."""
        wanted = {t["mark"]: t["reason"] for t in fmt.check_all(items)}
        if not wanted:
            return 0
        key = self.keyring.tombstone_key()
        ids = [r[0] for r in conn.execute("SELECT id FROM conversations")]
        found = [(c, wanted[m]) for c in ids if (m := crypto.mark(key, c.encode())) in wanted]
        return sum(delete(conn, conv_id, reason) is not None for conv_id, reason in found)

"""The access log a patient can read: which staff account opened, downloaded or exported what.

Entries are sealed under the conversation's record key and cascade with the conversation, so
they are patient data like the messages and go with them. Only the time is plain (for order).
Repeated opens are coalesced: a colleague who reloads the page is one entry, not fifty.
The patient reads who by their display name: the account's current one, else the one it had
when the entry was made (kept sealed in the entry), never merely the login while a name is known.
"""

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from services.facility.core import bindings, crypto, store
from services.facility.core.conversations import new_id
from services.facility.core.errors import CryptoError, RecordDamaged
from services.facility.core.keys import Keyring

ACTIONS = ("open", "download", "export_pdf", "export_fhir")
# The same account opening the same thing again within this window is one entry. Exports are
# never coalesced: each is a copy that left the system.
COALESCED = ("open", "download")
COALESCE_SECONDS = 10 * 60
# A busy conversation still shows the patient a bounded page.
MAX_ENTRIES = 500


@dataclass
class AccessLog:
    """The sealed access entries of one facility's conversations."""

    keyring: Keyring
    facility: str
    clock: Callable[[], int]

    def record(
        self, conn: sqlite3.Connection, conv_id: str, who: str, action: str, item: str = ""
    ) -> bool:
        """Add an entry unless an equal one is recent; True if one was added."""
        if action not in ACTIONS:
            raise ValueError(f"unknown access action {action!r}")
        entry = {"who": who, "action": action, "item": item}
        row = conn.execute("SELECT display_name FROM staff WHERE username = ?", (who,)).fetchone()
        if row and row[0]:
            entry["name"] = row[0]
        now = self.clock()
        with store.write(conn):
            if not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conv_id,)).fetchone():
                return False  # deleted meanwhile: nothing left to log against
            key = self.keyring.record_key(conn, conv_id)
            recent = conn.execute(
                "SELECT id, created_at, entry FROM access_log "
                "WHERE conversation_id = ? AND created_at > ?",
                (conv_id, now - COALESCE_SECONDS * 1_000_000),
            ).fetchall()
            if action in COALESCED and any(
                self._open(key, entry_id, conv_id, at, sealed) == entry
                for entry_id, at, sealed in recent
            ):
                return False
            entry_id = new_id()
            conn.execute(
                "INSERT INTO access_log (id, conversation_id, created_at, entry) "
                "VALUES (?, ?, ?, ?)",
                (entry_id, conv_id, now, self._seal(key, entry_id, conv_id, now, entry)),
            )
        return True

    def entries(self, conn: sqlite3.Connection, conv_id: str) -> list[dict]:
        """The entries, newest first: who (by display name), action, item, at (µs)."""
        rows = conn.execute(
            "SELECT id, created_at, entry FROM access_log WHERE conversation_id = ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (conv_id, MAX_ENTRIES),
        ).fetchall()
        if not rows:
            return []
        key = self.keyring.record_key(conn, conv_id)
        names = {
            username: name or username
            for username, name in conn.execute("SELECT username, display_name FROM staff")
        }
        result = []
        for entry_id, at, sealed in rows:
            entry = self._open(key, entry_id, conv_id, at, sealed)
            login = entry.pop("who")
            who = names.get(login) or entry.pop("name", None) or login
            entry.pop("name", None)
            result.append({**entry, "who": who, "at": at})
        return result

    def _seal(self, key: bytes, entry_id: str, conv_id: str, at: int, entry: dict) -> bytes:
        bound = bindings.access_entry(self.facility, entry_id, conv_id, at)
        return crypto.seal(key, json.dumps(entry).encode(), bound)

    def _open(self, key: bytes, entry_id: str, conv_id: str, at: int, sealed: bytes) -> dict:
        bound = bindings.access_entry(self.facility, entry_id, conv_id, at)
        try:
            return json.loads(crypto.unseal(key, sealed, bound))
        except CryptoError as e:
            raise RecordDamaged("an access-log entry") from e

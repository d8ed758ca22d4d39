"""Internal notes and assignment: the team's own layer on a conversation, never the patient's.

A note is patient content like a message: sealed under a record key of its own, bound to its
conversation, writer and time, and deleted with its conversation (cascade, its key included), so
a deleted conversation's notes leave no byte behind either. Adding a note is not activity: it
does not move the conversation's expiry. An assignment names a staff account (plain staff data).
"""

import sqlite3
from dataclasses import dataclass

from services.facility.core import crypto, store, texts
from services.facility.core.conversations import Conversations, new_id
from services.facility.core.errors import BadRequest, CryptoError, NotFound, RecordDamaged

# A note is short: a hint for colleagues, not a second conversation.
MAX_NOTE_CHARS = 2000


def _bound(facility: str, note_id: str, conv_id: str, staff_id: int, at: int) -> bytes:
    return crypto.aad(facility, "notes", note_id, "body", (conv_id, staff_id, at))


@dataclass
class Notes:
    """One facility's internal notes and assignments, over its conversations."""

    conversations: Conversations

    def add(self, conn: sqlite3.Connection, conv_id: str, staff_id: int, body: object) -> dict:
        c = self.conversations
        text = texts.check_text(body, MAX_NOTE_CHARS, "body")
        note_id, now = new_id(), c.clock()
        with store.write(conn):
            c.require_live(conn, conv_id)
            c.admit(conn, conv_id, len(text.encode()) + crypto.OVERHEAD)
            key = c.keyring.new_record_key(conn, note_id, conv_id)
            sealed = crypto.seal(
                key, text.encode(), _bound(c.facility, note_id, conv_id, staff_id, now)
            )
            conn.execute(
                "INSERT INTO notes (id, conversation_id, staff_id, created_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (note_id, conv_id, staff_id, now, sealed),
            )
        return {"id": note_id, "staff_id": staff_id, "created_at": now, "body": text}

    def list(self, conn: sqlite3.Connection, conv_id: str) -> list[dict]:
        """The conversation's notes, oldest first."""
        c = self.conversations
        c.require_live(conn, conv_id)
        rows = conn.execute(
            "SELECT n.id, n.staff_id, n.created_at, n.body, k.kek_version, k.wrapped "
            "FROM notes n JOIN record_keys k ON k.record_id = n.id "
            "WHERE n.conversation_id = ? ORDER BY n.created_at, n.rowid",
            (conv_id,),
        ).fetchall()
        result = []
        for note_id, staff_id, at, body, version, wrapped in rows:
            key = c.keyring.unwrap(note_id, version, wrapped)
            try:
                text = crypto.unseal(key, body, _bound(c.facility, note_id, conv_id, staff_id, at))
            except CryptoError as e:
                raise RecordDamaged("an internal note") from e
            result.append(
                {"id": note_id, "staff_id": staff_id, "created_at": at, "body": text.decode()}
            )
        return result

    # -- assignment -----------------------------------------------------------------------

    def assign(self, conn: sqlite3.Connection, conv_id: str, username: object) -> int | None:
        """Assign the conversation to an active staff account (None: to nobody); its id."""
        if username is not None and not isinstance(username, str):
            raise BadRequest("username must be a string or null")
        with store.write(conn):
            self.conversations.require_live(conn, conv_id)
            staff_id = None
            if username is not None:
                row = conn.execute(
                    "SELECT id FROM staff WHERE username = ? AND active = 1", (username,)
                ).fetchone()
                if row is None:
                    raise NotFound("no such active staff account")
                staff_id = row[0]
            conn.execute(
                "UPDATE conversations SET assigned_to = ? WHERE id = ?", (staff_id, conv_id)
            )
        return staff_id

    @staticmethod
    def assignees(conn: sqlite3.Connection) -> dict[str, int]:
        """Conversation id -> the staff id it is assigned to (assigned ones only)."""
        return dict(
            conn.execute(
                "SELECT id, assigned_to FROM conversations WHERE assigned_to IS NOT NULL"
            ).fetchall()
        )

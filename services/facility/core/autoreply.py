"""The automatic reply outside opening hours: once per conversation and closed period.

The practice switches it on and writes its text; when it is closed by the opening hours of its
contact (core/contact.py, read by core/opening.py in the facility's time zone), a patient's
message gets this text as a reply from the practice, once per conversation until the
practice has opened and closed again. Hours that name no time never count as closed. The reply is
marked as automatic wherever it is shown or exported, and it is no answer: the patient's message
still waits for one in the inbox.
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.facility.core import contact, opening, store, texts
from services.facility.core.conversations import AUTOMATIC_WRITER, Conversations
from services.facility.core.errors import BadRequest

MAX_CHARS = 2000
_ENABLED, _TEXT = "auto_reply_enabled", "auto_reply_text"


def get(conn: sqlite3.Connection) -> dict:
    """{"enabled", "text"} ("" when none is written)."""
    rows = dict(
        conn.execute(
            "SELECT name, value FROM settings WHERE name IN (?, ?)", (_ENABLED, _TEXT)
        ).fetchall()
    )
    return {"enabled": rows.get(_ENABLED) == "1", "text": rows.get(_TEXT, "")}


def set_auto_reply(conn: sqlite3.Connection, enabled: object, text: object) -> dict:
    """Store the switch and the text; switched on, it needs a text."""
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    text = texts.check_text(text or "", MAX_CHARS, "text", allow_empty=True).strip()
    if enabled and not text:
        raise BadRequest("an automatic reply needs a text")
    with store.write(conn):
        for name, value in ((_ENABLED, "1" if enabled else "0"), (_TEXT, text)):
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
    return {"enabled": enabled, "text": text}


@dataclass
class AutoReply:
    conversations: Conversations
    zone: ZoneInfo

    def closed_since(self, conn: sqlite3.Connection, now: int) -> int | None:
        """Since when (µs) the practice is closed; None while open or when nobody knows."""
        local = datetime.fromtimestamp(now / 1e6, self.zone)
        minute = local.weekday() * 24 * 60 + local.hour * 60 + local.minute
        closed = opening.closed_for(contact.get(conn)["hours"], minute)
        if closed is None:
            return None
        into_minute = (local.second * 1_000_000) + local.microsecond
        return now - into_minute - closed * 60 * 1_000_000

    def after_patient_message(self, conn: sqlite3.Connection, conv_id: str) -> bool:
        """Reply automatically if it is on, the practice is closed and this conversation has
        had no automatic reply since it closed; True if it did."""
        setting = get(conn)
        if not setting["enabled"] or not setting["text"]:
            return False
        convs = self.conversations
        with store.write(conn):
            now = convs.clock()
            since = self.closed_since(conn, now)
            row = conn.execute(
                "SELECT auto_reply_at FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if since is None or row is None or (row[0] is not None and row[0] >= since):
                return False
            convs.admit(conn, conv_id, len(setting["text"].encode()))
            convs.insert_message(conn, conv_id, "staff", setting["text"], AUTOMATIC_WRITER)
            conn.execute("UPDATE conversations SET auto_reply_at = ? WHERE id = ?", (now, conv_id))
        convs.on_change()
        return True

"""Who has read how far: unread counts per staff account and read receipts both ways.

A message counts as read once it was shown to its reader: the conversation page rendered for
them, or a messages list fetched by them (the page's live poll runs only while the page is
visible). Marks are content-free (conversation id, reader, a message rowid) and die with the
conversation (cascade). reader is the staff account's id; PATIENT (0) is the conversation's patient.
"""

import sqlite3

from services.facility.core import store
from services.facility.core.accounts import Principal
from services.facility.core.conversations import Conversations

PATIENT = 0


def reader_of(who: Principal) -> int:
    return PATIENT if who.kind == "patient" else int(who.staff_id)


def mark_read(conn: sqlite3.Connection, conv_id: str, reader: int, message_ids: list[str]) -> None:
    """Record that these messages (and all before them) were shown to the reader."""
    if not message_ids:
        return
    marks = ",".join("?" * len(message_ids))
    with store.write(conn):
        (newest,) = conn.execute(
            f"SELECT max(rowid) FROM messages WHERE conversation_id = ? AND id IN ({marks})",
            (conv_id, *message_ids),
        ).fetchone()
        if newest is None:
            return
        # Only forward: an older page reloaded in another tab must not unread anything.
        conn.execute(
            "INSERT INTO read_marks (conversation_id, reader, read_rowid) VALUES (?, ?, ?) "
            "ON CONFLICT (conversation_id, reader) DO UPDATE SET "
            "read_rowid = max(read_rowid, excluded.read_rowid)",
            (conv_id, reader, newest),
        )


def live_after(conversations: Conversations, conn: sqlite3.Connection) -> int:
    """Conversations active after this time are live; an expired one counts for nobody."""
    return conversations.clock() - conversations.retention(conn) * 1_000_000


def unread_counts(conn: sqlite3.Connection, staff_id: int, live_after: int = 0) -> dict[str, int]:
    """Per live conversation (last activity after `live_after`): the patient's messages this
    staff account has not been shown yet."""
    rows = conn.execute(
        "SELECT m.conversation_id, count(*) FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id AND c.last_activity > ? "
        "LEFT JOIN read_marks r ON r.conversation_id = m.conversation_id AND r.reader = ? "
        "WHERE m.author = 'patient' AND m.rowid > coalesce(r.read_rowid, 0) "
        "GROUP BY m.conversation_id",
        (live_after, staff_id),
    )
    return dict(rows.fetchall())


def _read_by(conn: sqlite3.Connection, conv_id: str) -> dict[str, int]:
    """How far each side has read: the patient, and the furthest of any staff account."""
    (patient,) = conn.execute(
        "SELECT coalesce(max(read_rowid), 0) FROM read_marks "
        "WHERE conversation_id = ? AND reader = ?",
        (conv_id, PATIENT),
    ).fetchone()
    (staff,) = conn.execute(
        "SELECT coalesce(max(read_rowid), 0) FROM read_marks "
        "WHERE conversation_id = ? AND reader != ?",
        (conv_id, PATIENT),
    ).fetchone()
    # A staff message is read by the patient; a patient message by any staff account.
    return {"staff": patient, "patient": staff}


def annotate(conn: sqlite3.Connection, conv_id: str, messages: list[dict]) -> None:
    """Set each message's "read": whether the side that did not write it has been shown it."""
    read_by = _read_by(conn, conv_id)
    rowids = dict(
        conn.execute("SELECT id, rowid FROM messages WHERE conversation_id = ?", (conv_id,))
    )
    for m in messages:
        m["read"] = rowids.get(m["id"], 0) <= read_by[m["author"]]


def read_up_to(conn: sqlite3.Connection, conv_id: str, side: str) -> str | None:
    """The newest message of `side` that the other side has read (for live read receipts)."""
    row = conn.execute(
        "SELECT id FROM messages WHERE conversation_id = ? AND author = ? AND rowid <= ? "
        "ORDER BY rowid DESC LIMIT 1",
        (conv_id, side, _read_by(conn, conv_id)[side]),
    ).fetchone()
    return row[0] if row else None

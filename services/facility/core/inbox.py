"""The team inbox: each live conversation with its patient, its last message and who owes a reply.

The preview of the last message is opened in memory for the one answer it goes into; it is never
written anywhere (no cache, no index, no log line), like the search over titles in
conversation_list.py.
"""

import sqlite3

from services.facility.core import bindings, conversation_list, crypto, reading
from services.facility.core.conversations import AUTOMATIC_WRITER, Conversations
from services.facility.core.errors import CryptoError
from services.facility.core.notes import Notes

# The preview is one line of at most this many characters (an ellipsis marks a cut).
PREVIEW_CHARS = 120
# all; unread: patient messages this account has not been shown; waiting: the patient wrote last;
# mine: assigned to this account.
FILTERS = ("all", "unread", "waiting", "mine")


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The text on one line, cut at a word where one is near the limit."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def waiting(conn: sqlite3.Connection, conv_ids: list[str]) -> dict[str, int]:
    """Per conversation whose patient wrote last: since when they wait for a reply (the first of
    their messages after the team's last one; the automatic reply is none). Content-free: no
    message is opened."""
    if not conv_ids:
        return {}
    marks = ",".join("?" * len(conv_ids))
    return dict(
        conn.execute(
            "SELECT p.conversation_id, min(p.created_at) FROM messages p "
            f"WHERE p.conversation_id IN ({marks}) AND p.author = 'patient' AND p.rowid > "
            "coalesce((SELECT max(s.rowid) FROM messages s WHERE s.conversation_id = "
            "p.conversation_id AND s.author = 'staff' AND s.staff_id IS NOT ?), 0) "
            "GROUP BY p.conversation_id",
            (*conv_ids, AUTOMATIC_WRITER),
        ).fetchall()
    )


def last_messages(
    conversations: Conversations, conn: sqlite3.Connection, conv_ids: list[str]
) -> dict[str, dict]:
    """Per conversation: its newest message (author, staff id, time, preview, file names)."""
    if not conv_ids:
        return {}
    marks = ",".join("?" * len(conv_ids))
    rows = conn.execute(
        "SELECT m.id, m.conversation_id, m.author, m.staff_id, m.created_at, m.body, "
        "k.kek_version, k.wrapped FROM messages m JOIN record_keys k ON k.record_id = m.id "
        "WHERE m.rowid IN (SELECT max(rowid) FROM messages "
        # A message its writer deleted is no preview: the one before it is.
        f"WHERE conversation_id IN ({marks}) AND deleted_at IS NULL GROUP BY conversation_id)",
        conv_ids,
    ).fetchall()
    result = {}
    for msg_id, conv_id, author, staff_id, created_at, body, version, wrapped in rows:
        key = conversations.keyring.unwrap(msg_id, version, wrapped)
        bound = bindings.message_body(
            conversations.facility, msg_id, conv_id, author, created_at, staff_id
        )
        try:
            text = crypto.unseal(key, body, bound).decode()
            files = [
                conversations.attachment(conn, att_id)[1]["filename"]
                for (att_id,) in conn.execute(
                    "SELECT id FROM attachments WHERE message_id = ? ORDER BY rowid", (msg_id,)
                )
            ]
            damaged = False
        except CryptoError:
            # One altered message must not take the whole inbox down; its row says so.
            text, files, damaged = "", [], True
        result[conv_id] = {
            "id": msg_id,
            "author": author,
            "staff_id": staff_id,
            "automatic": staff_id == AUTOMATIC_WRITER,
            "created_at": created_at,
            "preview": preview(text),
            "files": files,
            "damaged": damaged,
        }
    return result


def rows(
    conversations: Conversations,
    conn: sqlite3.Connection,
    summaries: list[dict],
    unread: dict[str, int],
) -> list[dict]:
    """The summaries, each with the inbox's fields: patient name, last message, waiting, unread."""
    ids = [s["id"] for s in summaries]
    last, since = last_messages(conversations, conn, ids), waiting(conn, ids)
    assigned = Notes.assignees(conn)
    result = []
    for s in summaries:
        message = last.get(s["id"])
        reference = s.get("reference") or {}
        result.append(
            {
                **s,
                "patient_name": reference.get("name", ""),
                "last_message": message,
                "waiting_since": since.get(s["id"]),
                "unread": unread.get(s["id"], 0),
                "assigned_to": assigned.get(s["id"]),
            }
        )
    return result


def listing(
    conversations: Conversations,
    conn: sqlite3.Connection,
    staff_id: int,
    text: str = "",
    shown: str = "all",
) -> list[dict]:
    """The inbox of one staff account: the live conversations whose title or reference holds
    every word of `text`, narrowed by the filter `shown`, most recent activity first."""
    unread = reading.unread_counts(conn, staff_id, reading.live_after(conversations, conn))
    query = conversation_list.Query(text=text[: conversation_list.MAX_QUERY].strip())
    summaries = conversation_list.select(conversations.summaries(conn), unread, query)
    if shown == "unread":
        summaries = [s for s in summaries if unread.get(s["id"])]
    elif shown == "waiting":
        since = waiting(conn, [s["id"] for s in summaries])
        summaries = [s for s in summaries if s["id"] in since]
    elif shown == "mine":
        assigned = Notes.assignees(conn)
        summaries = [s for s in summaries if assigned.get(s["id"]) == staff_id]
    return rows(conversations, conn, summaries, unread)

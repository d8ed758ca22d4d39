"""A writer takes back or corrects their own message, for a short while after sending it.

The old text goes the way a deleted conversation does: its record key is deleted (secure_delete
overwrites the freed bytes), the sealed body is replaced, and a checkpoint truncates the WAL, so
no copy of the old text or its key is left in the data directory. What stays is a visible mark:
the message was corrected (when) or deleted by its writer (when).
"""

import sqlite3

from services.facility.core import bindings, crypto, store, texts
from services.facility.core.conversations import ID_RE, Conversations, shed_chunks
from services.facility.core.errors import Conflict, Forbidden, NotFound

# How long after sending a writer may still correct or delete a message (the pages say so).
EDIT_WINDOW_SECONDS = 10 * 60


class EditWindowClosed(Conflict):
    code = "edit_window_closed"


class MessageDeleted(Conflict):
    code = "message_deleted"


def editable_until(created_at: int) -> int:
    """Until when (µs) a message written at `created_at` may be changed."""
    return created_at + EDIT_WINDOW_SECONDS * 1_000_000


def correct(
    convs: Conversations,
    conn: sqlite3.Connection,
    conv_id: str,
    msg_id: str,
    author: str,
    staff_id: int | None,
    body: object,
) -> int:
    """Replace the text of one's own message under a new key; returns when (µs)."""
    text = texts.check_text(body, convs.max_body_chars, "body")
    with store.write(conn):
        row = _own_message(convs, conn, conv_id, msg_id, author, staff_id)
        convs.admit(conn, conv_id, len(text.encode()) + crypto.OVERHEAD)
        _, created_at, writer = row
        # The old key goes first; the new text gets a key of its own under the same record id.
        conn.execute("DELETE FROM record_keys WHERE record_id = ?", (msg_id,))
        key = convs.keyring.new_record_key(conn, msg_id, conv_id)
        now = convs.clock()
        sealed = crypto.seal(
            key,
            text.encode(),
            bindings.message_body(convs.facility, msg_id, conv_id, author, created_at, writer),
        )
        conn.execute(
            "UPDATE messages SET body = ?, edited_at = ? WHERE id = ?", (sealed, now, msg_id)
        )
        store.tally(conn, "messages_corrected", 1)
    store.checkpoint(conn)
    return now


def delete(
    convs: Conversations,
    conn: sqlite3.Connection,
    conv_id: str,
    msg_id: str,
    author: str,
    staff_id: int | None,
) -> int:
    """Delete one's own message: its text, its files and their keys; returns when (µs)."""
    with store.write(conn):
        _own_message(convs, conn, conv_id, msg_id, author, staff_id)
    return convs.make_room(lambda: _delete(convs, conn, conv_id, msg_id, author, staff_id))


def _delete(convs, conn, conv_id, msg_id, author, staff_id) -> int:
    shed_chunks(
        conn,
        "attachment_id IN (SELECT id FROM attachments WHERE message_id = ?)",
        (msg_id,),
        convs.shed_chunks,
    )
    with store.write(conn):
        _own_message(convs, conn, conv_id, msg_id, author, staff_id)
        conn.execute(
            "DELETE FROM record_keys WHERE record_id IN "
            "(SELECT id FROM attachments WHERE message_id = ?) OR record_id = ?",
            (msg_id, msg_id),
        )
        conn.execute("DELETE FROM attachments WHERE message_id = ?", (msg_id,))
        now = convs.clock()
        conn.execute("UPDATE messages SET body = x'', deleted_at = ? WHERE id = ?", (now, msg_id))
        store.tally(conn, "messages_deleted", 1)
    store.checkpoint(conn)
    return now


def _own_message(
    convs: Conversations,
    conn: sqlite3.Connection,
    conv_id: str,
    msg_id: str,
    author: str,
    staff_id: int | None,
) -> tuple:
    """The message (author, created_at, staff_id) if the caller wrote it and may still change it."""
    convs.require_live(conn, conv_id)
    row = conn.execute(
        "SELECT author, created_at, staff_id, deleted_at FROM messages "
        "WHERE id = ? AND conversation_id = ?",
        (msg_id if ID_RE.match(msg_id or "") else "", conv_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such message")
    writer_author, created_at, writer, deleted_at = row
    mine = writer_author == author and (
        author == "patient" or (staff_id is not None and writer == staff_id)
    )
    if not mine:
        raise Forbidden("only the one who wrote a message may change it")
    if deleted_at is not None:
        raise MessageDeleted("this message was deleted")
    if convs.clock() > editable_until(created_at):
        raise EditWindowClosed(
            f"a message can be changed only within {EDIT_WINDOW_SECONDS // 60} minutes"
        )
    return writer_author, created_at, writer

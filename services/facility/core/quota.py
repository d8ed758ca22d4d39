"""Storage quotas: how much a facility and each conversation may hold, and what they hold now.

The operator sets both quotas (management command `set-quota`, run by `medcell facility
set-quota`); they live in the settings table, which the facility's admins cannot change through
the app. Usage is measured two ways, each where it is honest:

- the facility: the database pages in use (page_count − freelist_count, times page_size), i.e.
  everything stored including indexes, sealing overhead and staff data; free pages that SQLite
  reuses do not count, nor does the WAL, which checkpoints empty.
- a conversation: the stored (sealed) sizes of its title, message bodies and attachment
  contents, summed as they are added (table conversation_usage; it goes with the conversation).
"""

import sqlite3
from dataclasses import dataclass

from medcell_common.sizes import format_size, parse_quota
from services.facility.core import store
from services.facility.core.errors import BadRequest, ConversationFull, FacilityFull

DEFAULT_FACILITY_QUOTA = 2 * 1024**3
DEFAULT_CONVERSATION_QUOTA = 200 * 1024**2
LARGEST = 5
_NAMES = {"facility": "quota", "conversation": "conversation_quota"}
_DEFAULTS = {"facility": DEFAULT_FACILITY_QUOTA, "conversation": DEFAULT_CONVERSATION_QUOTA}


@dataclass(frozen=True)
class Quotas:
    facility: int
    conversation: int


def quotas(conn: sqlite3.Connection) -> Quotas:
    """The quotas in force (the operator's, else the defaults)."""
    rows = dict(
        conn.execute(
            "SELECT name, value FROM settings WHERE name IN ('quota', 'conversation_quota')"
        ).fetchall()
    )
    return Quotas(
        facility=int(rows.get("quota", DEFAULT_FACILITY_QUOTA)),
        conversation=int(rows.get("conversation_quota", DEFAULT_CONVERSATION_QUOTA)),
    )


def set_quotas(
    conn: sqlite3.Connection, facility: str | None = None, conversation: str | None = None
) -> Quotas:
    """Store new quotas (sizes like `2GiB`); the operator's command, never the app's API."""
    values = {}
    for kind, text in (("facility", facility), ("conversation", conversation)):
        if text is None:
            continue
        try:
            values[_NAMES[kind]] = parse_quota(text)
        except ValueError as e:
            raise BadRequest(f"{kind} quota: {e}") from e
    with store.write(conn):
        for name, value in values.items():
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, str(value)),
            )
    return quotas(conn)


def facility_used(conn: sqlite3.Connection) -> int:
    """Bytes of database pages in use."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * page_size


def conversation_used(conn: sqlite3.Connection, conv_id: str) -> int:
    """Stored bytes of one conversation (its running total)."""
    row = conn.execute(
        "SELECT bytes FROM conversation_usage WHERE conversation_id = ?", (conv_id,)
    ).fetchone()
    return row[0] if row else 0


def admit(conn: sqlite3.Connection, conv_id: str, nbytes: int) -> None:
    """Refuse new content that would take either quota over its limit, else count it.

    Call it inside the write that stores the content: a refusal or a rollback counts nothing.
    A conversation being created is counted once its row exists (see Conversations.create).
    """
    limits = quotas(conn)
    used = conversation_used(conn, conv_id)
    if used + nbytes > limits.conversation:
        raise ConversationFull(
            f"this conversation is full ({format_size(limits.conversation)}): "
            "nothing was stored; delete it or start a new conversation"
        )
    if facility_used(conn) + nbytes > limits.facility:
        raise FacilityFull(
            f"the facility's storage quota ({format_size(limits.facility)}) is used up: "
            "nothing was stored; deleting conversations makes room"
        )
    count(conn, conv_id, nbytes)


def count(conn: sqlite3.Connection, conv_id: str, nbytes: int) -> None:
    """Add stored bytes to a conversation's running total (in the write that stores them)."""
    conn.execute(
        "INSERT INTO conversation_usage (conversation_id, bytes) VALUES (?, ?) "
        "ON CONFLICT (conversation_id) DO UPDATE SET bytes = bytes + excluded.bytes",
        (conv_id, nbytes),
    )


def usage(conn: sqlite3.Connection) -> dict:
    """Content-free figures for admins and the operator: sizes and counts, never ids or titles."""
    limits = quotas(conn)
    used = facility_used(conn)
    largest = conn.execute(
        "SELECT u.conversation_id, u.bytes, "
        "(SELECT count(*) FROM messages WHERE conversation_id = u.conversation_id), "
        "(SELECT count(*) FROM attachments WHERE conversation_id = u.conversation_id) "
        "FROM conversation_usage u ORDER BY u.bytes DESC LIMIT ?",
        (LARGEST,),
    ).fetchall()
    return {
        "used_bytes": used,
        "quota_bytes": limits.facility,
        "quota": format_size(limits.facility),
        "used_percent": round(100 * used / limits.facility, 1),
        "conversation_quota_bytes": limits.conversation,
        "conversation_quota": format_size(limits.conversation),
        "largest_conversations": [
            {
                "bytes": size,
                "used_percent": round(100 * size / limits.conversation, 1),
                "messages": messages,
                "attachments": files,
            }
            for _, size, messages, files in largest
        ],
    }

"""What each sealed record is bound to besides its own place: the plain columns beside it.

A message's conversation, author and time, an attachment's conversation, message and size, an
access-log entry's conversation and time are stored in plain (for queries and order). They are
part of the associated data of the sealed value next to them, so a database writer without the
keys who moves a message to another conversation, flips its author or changes its time makes
it fail to open: exports are medical records, and altered ones must not pass as genuine.
Writers, readers and the migration that re-sealed older records (migrations.py) use these.
"""

from services.facility.core import crypto


def message_body(
    facility: str,
    msg_id: str,
    conv_id: str,
    author: str,
    created_at: int,
    staff_id: int | None = None,
) -> bytes:
    # Which colleague wrote a staff message is bound too; messages from before writers were
    # recorded (staff_id NULL) keep the binding they were sealed with.
    columns = (
        (conv_id, author, created_at)
        if staff_id is None
        else (conv_id, author, created_at, staff_id)
    )
    return crypto.aad(facility, "messages", msg_id, "body", columns)


def attachment_meta(
    facility: str, att_id: str, conv_id: str, message_id: str, size: int, chunks: int
) -> bytes:
    return crypto.aad(facility, "attachments", att_id, "meta", (conv_id, message_id, size, chunks))


def access_entry(facility: str, entry_id: str, conv_id: str, created_at: int) -> bytes:
    return crypto.aad(facility, "access_log", entry_id, "entry", (conv_id, created_at))

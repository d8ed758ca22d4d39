"""Schema versions, applied in order at start; the version lives in PRAGMA user_version.

Times are integers in microseconds since the epoch (UTC). Every patient-related value that
carries content is a sealed BLOB; its record key lives wrapped in record_keys.

Most steps are SQL. A step that is a function re-seals data and needs the facility's keys: the
store stops before it until the keys are there (open_facility migrates again once they are).
"""

import sqlite3
from collections.abc import Callable
from typing import Any

from services.facility.core import bindings, crypto
from services.facility.core.errors import CryptoError

V1 = """
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE kek_versions (
    version INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    destroyed_at INTEGER
);
CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
    created_at INTEGER NOT NULL
);
CREATE TABLE staff_sessions (
    token_hash BLOB PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions(staff_id);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    title BLOB,
    patient_token_hash BLOB NOT NULL UNIQUE,
    pin_hash BLOB,
    pin_failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_last_activity ON conversations(last_activity);
CREATE TABLE record_keys (
    record_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kek_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL
);
CREATE INDEX record_keys_conversation ON record_keys(conversation_id);
CREATE INDEX record_keys_kek ON record_keys(kek_version);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author TEXT NOT NULL CHECK (author IN ('staff', 'patient')),
    created_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at);
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    meta BLOB NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);
CREATE INDEX attachments_conversation ON attachments(conversation_id);
CREATE TABLE attachment_chunks (
    attachment_id TEXT NOT NULL REFERENCES attachments(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);
CREATE TABLE throttle (
    key BLOB PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_ends INTEGER NOT NULL
);
"""

# Patient sessions: what a patient link (plus its PIN, if any) is exchanged for. Only hashes of
# session tokens are kept; a session dies with its conversation (cascade). pin_ok is 0 while the
# PIN is still owed: such a session grants nothing but the right to try the PIN.
V2 = """
CREATE TABLE patient_sessions (
    token_hash BLOB PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    pin_ok INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX patient_sessions_conversation ON patient_sessions(conversation_id);
"""

# Patient uploads counted per conversation (the link), so one leaked link cannot flood the
# facility; and the bytes each conversation holds, kept as a running total so that the quota
# check costs one row, not a scan of the conversation. Content-free counters that go with their
# conversation.
V3 = """
CREATE TABLE upload_throttle (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    uploads INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    window_ends INTEGER NOT NULL
);
CREATE TABLE conversation_usage (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    bytes INTEGER NOT NULL
);
INSERT INTO conversation_usage (conversation_id, bytes)
SELECT c.id,
    (SELECT coalesce(sum(length(body)), 0) FROM messages WHERE conversation_id = c.id)
    + (SELECT coalesce(sum(size), 0) FROM attachments WHERE conversation_id = c.id)
FROM conversations c;
"""  # quotas and usage (issue 11): upload counters and each conversation's stored bytes
# Deletion receipts: content-free by construction, so no conversation_id and nothing sealed.
# deleted_at is whole seconds; a receipt is signed (signature not NULL) once its deletion was
# checked. deletion_tallies holds what an expiring conversation had when its bounded deletion
# began, so its receipt counts everything even if the deletion spans several transactions or
# a restart; the row goes with the conversation.
V4 = """
CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('patient', 'staff', 'expiry', 'facility_wipe')),
    messages INTEGER NOT NULL,
    attachments INTEGER NOT NULL,
    record_keys INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    signature TEXT
);
CREATE INDEX receipts_deleted_at ON receipts(deleted_at);
CREATE TABLE deletion_tallies (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    messages INTEGER NOT NULL,
    attachments INTEGER NOT NULL,
    record_keys INTEGER NOT NULL
);
"""
# Patient reference and access log. The reference (name, date of birth, practice number) is
# sealed under the conversation's record key like the title and goes with its row. Access-log
# entries (who, what) are sealed the same way; only their time is plain, for ordering.
V5 = """
ALTER TABLE conversations ADD COLUMN reference BLOB;
CREATE TABLE access_log (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    entry BLOB NOT NULL
);
CREATE INDEX access_log_conversation ON access_log(conversation_id, created_at);
"""  # patient reference and access log (issue 12)
# Notifications. A staff account's own address (opt-in; not patient data, gone with the account).
# A patient's address is sealed under the conversation's record key and cascades with it; so do
# the outbox (sealed mails the supervisor fetches over the socket, sends and acknowledges) and
# the time of the last mail per conversation and recipient kind (at most one per 15 minutes).
V6 = """
CREATE TABLE notify_staff (
    staff_id INTEGER PRIMARY KEY REFERENCES staff(id) ON DELETE CASCADE,
    address TEXT NOT NULL
);
CREATE TABLE notify_patient (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    address BLOB NOT NULL
);
CREATE TABLE notify_sent (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('staff', 'patient')),
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, kind)
);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    mail BLOB NOT NULL
);
CREATE INDEX outbox_conversation ON outbox(conversation_id);
"""
# How far each reader has read a conversation: reader is a staff id, 0 the patient; read_rowid
# is the rowid of the newest message shown to them. Content-free; dies with the conversation.
V7 = """
CREATE TABLE read_marks (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    reader INTEGER NOT NULL,
    read_rowid INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, reader)
);
CREATE INDEX read_marks_reader ON read_marks(reader);
"""
# Staff accounts can be deactivated (active = 0: no login, no session) and reactivated.
# Quick replies are the facility's own text templates, written by admins: no patient data, so
# plain text like the staff names. The facility's contact (phone, hours) lives in settings.
V8 = """
ALTER TABLE staff ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
CREATE TABLE quick_replies (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"""

# Names on messages. A staff account's display name is staff data, plain like its username ('':
# none set, the username stands in). A message records which account wrote it (staff_id, NULL for
# the patient and for messages from before); it is bound into the body's associated data
# (bindings.message_body) and kept when the account goes, so staff ids are never reused
# (accounts.create_staff counts them in counters 'staff_last_id').
V10 = """
ALTER TABLE staff ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN staff_id INTEGER;
INSERT INTO counters (name, value) SELECT 'staff_last_id', coalesce(max(id), 0) FROM staff
    WHERE true ON CONFLICT (name) DO NOTHING;
"""

# Assignment and internal notes. A conversation may be assigned to a staff account (staff data,
# plain; unassigned when the account goes). Internal notes are the team's own, never shown to the
# patient: patient content like messages, so each is sealed under a record key of its own, bound
# to its conversation, writer and time, and goes with its conversation (cascade, keys included).
V11 = """
ALTER TABLE conversations ADD COLUMN assigned_to INTEGER REFERENCES staff(id) ON DELETE SET NULL;
CREATE TABLE notes (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    staff_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX notes_conversation ON notes(conversation_id, created_at);
"""

# Staff sign-in (issue 21). A session has a stage: 'full', or one of the steps still owed after
# the password ('second_factor', 'password' to change, 'setup' of a second factor), which open
# nothing but that step. Passkeys (WebAuthn public keys), a TOTP secret (sealed under a key kept
# with the facility's keys, never in clear here) and hashed one-time recovery codes belong to
# their account and go with it. Challenges are single-use: a ceremony deletes its row.
V12 = """
ALTER TABLE staff_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE staff ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
CREATE TABLE staff_passkeys (
    id TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used INTEGER
);
CREATE INDEX staff_passkeys_staff ON staff_passkeys(staff_id);
CREATE TABLE staff_totp (
    staff_id INTEGER PRIMARY KEY REFERENCES staff(id) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE staff_recovery_codes (
    staff_id INTEGER NOT NULL REFERENCES staff(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    PRIMARY KEY (staff_id, code_hash)
);
CREATE TABLE webauthn_challenges (
    challenge_hash BLOB PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('register', 'login')),
    staff_id INTEGER REFERENCES staff(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
"""


def v9_bind_columns(conn: sqlite3.Connection, keyring: Any) -> None:
    """Re-seal messages, attachments' metadata and access-log entries so that their associated
    data binds the plain columns beside them (see bindings.py); after this none of them opens
    under the old binding. A value that did not open before either is left as it is: it reads
    as damaged, as it was."""
    facility = keyring.facility
    _rebind(
        conn,
        keyring,
        "SELECT rowid, id, id, body, conversation_id, author, created_at FROM messages",
        "UPDATE messages SET body = ? WHERE rowid = ?",
        lambda i, conv, author, at: (
            crypto.aad(facility, "messages", i, "body"),
            bindings.message_body(facility, i, conv, author, at),
        ),
    )
    _rebind(
        conn,
        keyring,
        "SELECT rowid, id, id, meta, conversation_id, message_id, size, chunks FROM attachments",
        "UPDATE attachments SET meta = ? WHERE rowid = ?",
        lambda i, conv, msg, size, chunks: (
            crypto.aad(facility, "attachments", i, "meta"),
            bindings.attachment_meta(facility, i, conv, msg, size, chunks),
        ),
    )
    # Access-log entries are sealed under their conversation's record key.
    _rebind(
        conn,
        keyring,
        "SELECT rowid, id, conversation_id, entry, conversation_id, created_at FROM access_log",
        "UPDATE access_log SET entry = ? WHERE rowid = ?",
        lambda i, conv, at: (
            crypto.aad(facility, "access_log", i, "entry"),
            bindings.access_entry(facility, i, conv, at),
        ),
    )


def _rebind(
    conn: sqlite3.Connection,
    keyring: Any,
    select: str,
    update: str,
    aads: Callable[..., tuple[bytes, bytes]],
) -> None:
    """For each row (rowid, id, key's record id, sealed value, *columns): open it under the old
    associated data, seal it again under the new one. Read in batches of rowids."""
    last = 0
    while True:
        rows = conn.execute(
            f"{select} WHERE rowid > ? ORDER BY rowid LIMIT 500", (last,)
        ).fetchall()
        if not rows:
            return
        for rowid, record_id, key_id, sealed, *columns in rows:
            old, new = aads(record_id, *columns)
            try:
                key = keyring.record_key(conn, key_id)
                plain = crypto.unseal(key, sealed, old)
            except CryptoError:
                continue
            conn.execute(update, (crypto.seal(key, plain, new), rowid))
        last = rows[-1][0]


# Corrections and deletions by a message's writer (core/edits.py): when, plain, for the mark the
# pages show; the old text and its key are gone. And when a conversation last had the automatic
# reply outside opening hours (core/autoreply.py), so it gets one per closed period.
V13 = """
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE conversations ADD COLUMN auto_reply_at INTEGER;
"""


# Patient links that can be sent again. The conversation's current link token, sealed under its
# record key, so staff can mail or print the same link later without making a new one; replaced
# with each new link and gone with the conversation (cascade, key included). Devices a patient
# chose to stay signed in on (30 days): only the hash of the device cookie's token, ended by the
# patient, by a new link, and gone with the conversation (cascade).
V14 = """
CREATE TABLE IF NOT EXISTS patient_links (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    token BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS patient_devices (
    token_hash BLOB PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS patient_devices_conversation ON patient_devices(conversation_id);
"""


MIGRATIONS: list[str | Callable[[sqlite3.Connection, Any], None]] = [
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V8,
    v9_bind_columns,
    V10,
    V11,
    V12,  # staff sign-in steps
    V13,  # message corrections, the automatic reply
    V14,  # patient links kept to send again, remembered devices
]


def apply(conn: sqlite3.Connection, keyring: Any = None) -> int:
    """Run every migration newer than the database, each in its own transaction.

    Without `keyring`, stop before the first step that needs the keys (and return the version
    reached); open_facility runs this again with the keys once they are ensured.
    """
    while True:
        # Several workers start at once: the version is read under the write lock, so each
        # migration runs exactly once and the others see it done.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {current} is newer than this app ({len(MIGRATIONS)})"
                )
            if current == len(MIGRATIONS):
                conn.execute("COMMIT")
                return current
            step = MIGRATIONS[current]
            if callable(step):
                if keyring is None:
                    conn.execute("COMMIT")
                    return current
                step(conn, keyring)
            else:
                for statement in _statements(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={current + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

"""Conversations, messages and attachments: sealed on the way in, shredded on the way out."""

import bisect
import io
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from medcell_common.interfaces import DELETION_LAG_BUCKETS, DeletionField
from medcell_common.receipts import REASONS
from services.facility.core import accounts as auth
from services.facility.core import (
    bindings,
    crypto,
    links,
    references,
    store,
    texts,
    throttle,
    uploads,
)
from services.facility.core.errors import (
    BadRequest,
    CryptoError,
    NotFound,
    PayloadTooLarge,
    RecordDamaged,
)
from services.facility.core.keys import Keyring
from services.facility.core.receipts import Receipts

ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
CHUNK_BYTES = 256 * 1024
DELETE_BATCH = 1000
# Attachment chunks shed per transaction before a conversation goes (at least 512 KiB; the
# facility sets a quarter of its space reserve): secure_delete writes every freed page to the
# WAL, so this bounds the free space a deletion needs on a full volume (measured: a bit more
# than the chunks' size; the reserve is at least 1 MiB).
SHED_CHUNKS = 2
# Files one message may carry (the pages' compose form; the API posts one at a time).
MAX_FILES = 10
# The writer (staff_id) of the messages the practice's automatic reply sends: no account has id 0
# (accounts.create_staff numbers them from 1), and like any writer it is bound into the sealed body,
# so a message cannot be made to look automatic, or written by someone, after it was sent.
AUTOMATIC_WRITER = 0
# How far back a reader's cursor for corrections and deletions reaches before the read that
# made it: longer than any write transaction takes (they are milliseconds).
CHANGES_MARGIN_US = 5_000_000
_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")


def new_id() -> str:
    """A random record id (128 bits): ids say nothing about order, time or count."""
    return secrets.token_urlsafe(16)


@dataclass
class Conversations:
    """One facility's conversations, with everything sealed under per-record keys."""

    keyring: Keyring
    facility: str
    clock: Callable[[], int]
    retention: Callable[[sqlite3.Connection], int]
    max_body_chars: int
    max_title_chars: int
    max_attachment_bytes: int
    receipts: Receipts
    # Called after a change that moves a deadline (new conversation, new activity): wakes the job.
    on_change: Callable[[], None] = lambda: None
    # Called inside each write of new content, before its content is stored: (conn, conversation
    # id, bytes to be added) -> None, or raises (quota and free space; see core/quota, space).
    admit: Callable[[sqlite3.Connection, str, int], None] = lambda conn, conv_id, n: None
    # Runs a deletion so that it still works on a full volume (see core/space.Space.make_room).
    make_room: Callable[[Callable[[], Any]], Any] = lambda action: action()
    shed_chunks: int = SHED_CHUNKS
    # Called with (conn, conversation id, author) after a message or attachment is stored.
    on_message: Callable[[sqlite3.Connection, str, str], None] = lambda conn, conv_id, author: None
    # Called with (conversation ids, reason) right after their deletion committed: leaves their
    # tombstones outside the database (core/tombstones.py), so that no restore brings them back.
    on_deleted: Callable[[list[str], str], None] = lambda conv_ids, reason: None

    # -- conversations --------------------------------------------------------------------

    def create(
        self,
        conn: sqlite3.Connection,
        title: str | None,
        pin_hash: bytes | None = None,
        reference: object = None,
    ) -> tuple[str, str]:
        """A new conversation; returns its id and the patient's token (shown only now)."""
        title = texts.check_text(title or "", self.max_title_chars, "title", allow_empty=True)
        reference = references.check(reference)
        conv_id, token, now = new_id(), auth.new_token(), self.clock()
        with store.write(conn):
            conn.execute(
                "INSERT INTO conversations (id, created_at, last_activity, title, "
                "patient_token_hash, pin_hash) VALUES (?, ?, ?, x'', ?, ?)",
                (conv_id, now, now, auth.token_hash(token), pin_hash),
            )
            self.admit(conn, conv_id, len(title.encode()) + crypto.OVERHEAD)
            key = self.keyring.new_record_key(conn, conv_id, conv_id)
            conn.execute(
                "UPDATE conversations SET title = ?, reference = ? WHERE id = ?",
                (
                    crypto.seal(key, title.encode(), self._aad("conversations", conv_id, "title")),
                    references.seal(key, self.facility, conv_id, reference),
                    conv_id,
                ),
            )
            links.keep(conn, key, self.facility, conv_id, token)  # to send the link again later
        self.on_change()
        return conv_id, token

    def summaries(self, conn: sqlite3.Connection) -> list[dict]:
        """The live conversations, most recent activity first."""
        retention_us = self.retention(conn) * 1_000_000
        rows = conn.execute(
            "SELECT id, title, last_activity, reference, created_at FROM conversations "
            "WHERE last_activity > ? ORDER BY last_activity DESC",
            (self.clock() - retention_us,),
        ).fetchall()
        return [self._summary(conn, row, retention_us) for row in rows]

    def get(self, conn: sqlite3.Connection, conv_id: str) -> dict:
        retention_us = self.retention(conn) * 1_000_000
        row = conn.execute(
            "SELECT id, title, last_activity, reference, created_at FROM conversations "
            "WHERE id = ? AND last_activity > ?",
            (conv_id, self.clock() - retention_us),
        ).fetchone()
        if row is None:
            raise NotFound("no such conversation")
        return self._summary(conn, row, retention_us)

    def _summary(self, conn: sqlite3.Connection, row: tuple, retention_us: int) -> dict:
        conv_id, sealed_title, last_activity, sealed_reference, created_at = row
        key = self.keyring.record_key(conn, conv_id)
        title = crypto.unseal(key, sealed_title, self._aad("conversations", conv_id, "title"))
        return {
            "id": conv_id,
            "title": title.decode(),
            "last_activity": last_activity,
            "expires_at": last_activity + retention_us,
            # The practice's label of the patient (staff only): for display and search.
            "reference": references.unseal(key, self.facility, conv_id, sealed_reference),
            "created_at": created_at,
        }

    def require_live(self, conn: sqlite3.Connection, conv_id: str) -> None:
        """NotFound unless the conversation exists and has not expired."""
        if not ID_RE.match(conv_id or ""):
            raise NotFound("no such conversation")
        row = conn.execute(
            "SELECT last_activity FROM conversations WHERE id = ?", (conv_id,)
        ).fetchone()
        if row is None or row[0] + self.retention(conn) * 1_000_000 <= self.clock():
            raise NotFound("no such conversation")

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        author: str,
        body: object,
        staff_id: int | None = None,
    ) -> dict:
        """A new message; `staff_id`: the account that wrote it, for a staff message."""
        text = texts.check_text(body, self.max_body_chars, "body")
        with store.write(conn):
            self.require_live(conn, conv_id)
            self.admit(conn, conv_id, len(text.encode()) + crypto.OVERHEAD)
            message = self.insert_message(conn, conv_id, author, text, staff_id)
        self.on_change()
        self.on_message(conn, conv_id, author)
        return message

    def insert_message(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        author: str,
        text: str,
        staff_id: int | None = None,
    ) -> dict:
        """Store a message; call inside a write transaction, after admit()."""
        msg_id, now = new_id(), self.clock()
        staff_id = staff_id if author == "staff" else None
        key = self.keyring.new_record_key(conn, msg_id, conv_id)
        conn.execute(
            "INSERT INTO messages (id, conversation_id, author, created_at, body, staff_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                msg_id,
                conv_id,
                author,
                now,
                crypto.seal(
                    key,
                    text.encode(),
                    bindings.message_body(self.facility, msg_id, conv_id, author, now, staff_id),
                ),
                staff_id,
            ),
        )
        conn.execute("UPDATE conversations SET last_activity = ? WHERE id = ?", (now, conv_id))
        return {"id": msg_id, "author": author, "created_at": now, "staff_id": staff_id}

    def changes_cursor(self) -> int:
        """Where a reader's next `messages(..., changed_since=)` starts: now, less a margin
        for a correction whose write began before this read and commits after it (a change
        may come twice; none is missed)."""
        return self.clock() - CHANGES_MARGIN_US

    def messages(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        after: str | None = None,
        changed_since: int | None = None,
    ) -> list[dict]:
        """The conversation's messages, oldest first; with `after`, only those after that
        message, and with `changed_since` (a `changes_cursor()`) also the older ones corrected or
        deleted since then."""
        self.require_live(conn, conv_id)
        query = (
            "SELECT m.id, m.author, m.created_at, m.body, k.kek_version, k.wrapped, m.staff_id, "
            "m.edited_at, m.deleted_at "
            # A message its writer deleted has no key left (core/edits.py): its mark stays.
            "FROM messages m LEFT JOIN record_keys k ON k.record_id = m.id "
            "WHERE m.conversation_id = ?"
        )
        params: tuple = (conv_id,)
        if after:
            newer = "m.rowid > coalesce((SELECT rowid FROM messages WHERE id = ?), 0)"
            params += (after,)
            if changed_since is not None:
                newer = f"({newer} OR m.edited_at >= ? OR m.deleted_at >= ?)"
                params += (changed_since, changed_since)
            query += " AND " + newer
        rows = conn.execute(query + " ORDER BY m.created_at, m.rowid", params).fetchall()
        files: dict[str, list] = {}
        for att_id, msg_id, size, chunks, meta in conn.execute(
            "SELECT id, message_id, size, chunks, meta FROM attachments "
            "WHERE conversation_id = ? ORDER BY rowid",
            (conv_id,),
        ):
            info = self._meta(conn, att_id, (conv_id, msg_id, size, chunks), meta)
            files.setdefault(msg_id, []).append(
                {
                    "id": att_id,
                    "filename": info["filename"],
                    "size": size,
                    "content_type": info["content_type"],
                }
            )
        result = []
        for msg_id, author, created_at, body, version, wrapped, staff_id, edited, gone in rows:
            text = (
                ""
                if gone is not None
                else self._body(
                    msg_id, conv_id, author, created_at, staff_id, body, version, wrapped
                )
            )
            result.append(
                {
                    "id": msg_id,
                    "author": author,
                    "staff_id": staff_id,
                    "automatic": staff_id == AUTOMATIC_WRITER,
                    "body": text,
                    "created_at": created_at,
                    "attachments": files.get(msg_id, []),
                    "edited_at": edited,
                    "deleted_at": gone,
                }
            )
        return result

    def _body(self, msg_id, conv_id, author, created_at, staff_id, body, version, wrapped) -> str:
        if wrapped is None:
            raise RecordDamaged("a message")
        key = self.keyring.unwrap(msg_id, version, wrapped)
        bound = bindings.message_body(self.facility, msg_id, conv_id, author, created_at, staff_id)
        try:
            return crypto.unseal(key, body, bound).decode()
        except CryptoError as e:
            raise RecordDamaged("a message") from e

    # -- attachments ----------------------------------------------------------------------

    def add_attachment(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        author: str,
        filename: str,
        content_type: str | None,
        stream: io.BufferedIOBase,
        body: object = "",
        staff_id: int | None = None,
    ) -> dict:
        """A message with one file (and an optional text); returns the attachment."""
        (result,) = self.add_attachments(
            conn, conv_id, author, [(filename, content_type, stream)], body, staff_id
        )
        return result

    def add_attachments(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        author: str,
        files: list[tuple[str, str | None, io.BufferedIOBase]],
        body: object = "",
        staff_id: int | None = None,
    ) -> list[dict]:
        """A message with several files (name, declared type, stream) and an optional text."""
        if not files or len(files) > MAX_FILES:
            raise BadRequest(f"a message carries 1 to {MAX_FILES} files")
        text = texts.check_text(body or "", self.max_body_chars, "body", allow_empty=True)
        checked = []
        for filename, content_type, stream in files:
            filename = self._check_filename(filename)
            # The upload is already held in memory (see MemoryRequest); read it a chunk at a
            # time rather than copy it whole, so one upload costs its size once, not twice.
            size = stream.seek(0, io.SEEK_END) - stream.seek(0)
            if size > self.max_attachment_bytes:
                raise PayloadTooLarge(
                    f"attachments may be at most {self.max_attachment_bytes} bytes"
                )
            # Stored is the type the bytes show; `content_type` is only what the client declared.
            kind = uploads.stored_type(stream.read(uploads.HEAD_BYTES), content_type)
            stream.seek(0)
            checked.append((filename, kind, stream, size, max(1, -(-size // CHUNK_BYTES))))
        total = sum(size for *_, size, _ in checked)
        with store.write(conn):
            self.require_live(conn, conv_id)
            if author == "patient":
                throttle.count_upload(conn, conv_id, total, self.clock())
            overhead = sum(chunks for *_, chunks in checked) * crypto.OVERHEAD
            self.admit(conn, conv_id, total + len(text.encode()) + overhead)
            message = self.insert_message(conn, conv_id, author, text, staff_id)
            results = [self._store_file(conn, conv_id, message["id"], *file) for file in checked]
        store.settle(conn)
        self.on_change()
        self.on_message(conn, conv_id, author)
        return results

    def _store_file(
        self,
        conn: sqlite3.Connection,
        conv_id: str,
        msg_id: str,
        filename: str,
        content_type: str,
        stream: io.BufferedIOBase,
        size: int,
        chunks: int,
    ) -> dict:
        att_id = new_id()
        key = self.keyring.new_record_key(conn, att_id, conv_id)
        meta = json.dumps({"filename": filename, "content_type": content_type}).encode()
        conn.execute(
            "INSERT INTO attachments (id, conversation_id, message_id, size, chunks, meta) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                att_id,
                conv_id,
                msg_id,
                size,
                chunks,
                crypto.seal(
                    key,
                    meta,
                    bindings.attachment_meta(self.facility, att_id, conv_id, msg_id, size, chunks),
                ),
            ),
        )
        for seq in range(chunks):
            piece = stream.read(CHUNK_BYTES)
            conn.execute(
                "INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES (?, ?, ?)",
                (att_id, seq, crypto.seal(key, piece, self._chunk_aad(att_id, seq, chunks))),
            )
        return {"id": att_id, "filename": filename, "size": size, "message_id": msg_id}

    def attachment(self, conn: sqlite3.Connection, att_id: str) -> tuple[str, dict, int]:
        """The conversation id, metadata and size of an attachment; NotFound if gone."""
        row = conn.execute(
            "SELECT conversation_id, message_id, size, chunks, meta FROM attachments WHERE id = ?",
            (att_id if ID_RE.match(att_id or "") else "",),
        ).fetchone()
        if row is None:
            raise NotFound("no such attachment")
        conv_id, msg_id, size, chunks, meta = row
        self.require_live(conn, conv_id)
        return conv_id, self._meta(conn, att_id, (conv_id, msg_id, size, chunks), meta), size

    def attachment_bytes(self, conn: sqlite3.Connection, att_id: str) -> Iterator[bytes]:
        """The attachment's content, one decrypted chunk at a time."""
        key = self.keyring.record_key(conn, att_id)
        (chunks,) = conn.execute(
            "SELECT chunks FROM attachments WHERE id = ?", (att_id,)
        ).fetchone()
        for seq in range(chunks):
            row = conn.execute(
                "SELECT data FROM attachment_chunks WHERE attachment_id = ? AND seq = ?",
                (att_id, seq),
            ).fetchone()
            if row is None:
                raise NotFound("attachment was deleted")
            yield crypto.unseal(key, row[0], self._chunk_aad(att_id, seq, chunks))

    def _meta(self, conn: sqlite3.Connection, att_id: str, columns: tuple, sealed: bytes) -> dict:
        """An attachment's name and type; `columns`: its conversation, message, size, chunks."""
        key = self.keyring.record_key(conn, att_id)
        bound = bindings.attachment_meta(self.facility, att_id, *columns)
        try:
            return json.loads(crypto.unseal(key, sealed, bound))
        except CryptoError as e:
            raise RecordDamaged("an attachment") from e

    # -- deletion -------------------------------------------------------------------------

    def delete(self, conn: sqlite3.Connection, conv_id: str, reason: str = "staff") -> dict | None:
        """Delete one conversation completely, then purge the WAL; returns its signed receipt.

        Its attachments' contents go first, a few chunks per transaction (see SHED_CHUNKS); then
        the conversation and everything else of it in one transaction. None if there was no
        such conversation.
        """
        return self.make_room(lambda: self._delete(conn, conv_id, reason))

    def _delete(self, conn: sqlite3.Connection, conv_id: str, reason: str) -> dict | None:
        shed_chunks(
            conn,
            "attachment_id IN (SELECT id FROM attachments WHERE conversation_id = ?)",
            (conv_id,),
            self.shed_chunks,
        )
        with store.write(conn):
            counts = self.receipts.counts(conn, [conv_id])
            gone = _delete_conversation(conn, conv_id)
            pending = self.receipts.begin(conn, reason, counts, [conv_id]) if gone else None
            if gone:
                store.tally(conn, deletions_counter(reason), 1)
        if pending is None:
            return None
        self.on_deleted([conv_id], reason)
        _count(conn, "conversations_deleted", 1)
        (receipt,) = self.receipts.finish(conn, [pending], store.checkpoint(conn))
        return receipt

    def delete_expired(self, conn: sqlite3.Connection, batch: int = DELETE_BATCH) -> int:
        """Delete every expired conversation in bounded transactions; returns how many."""
        return self.make_room(lambda: self._delete_expired(conn, batch))

    def _delete_expired(self, conn: sqlite3.Connection, batch: int) -> int:
        cutoff = self.clock() - self.retention(conn) * 1_000_000
        shed_chunks(
            conn,
            "attachment_id IN (SELECT a.id FROM attachments a JOIN conversations c "
            "ON c.id = a.conversation_id WHERE c.last_activity <= ?)",
            (cutoff,),
            self.shed_chunks,
        )
        pending = []
        while True:
            # Each transaction removes at most `batch` messages, so that live writers never
            # wait long for the lock; a conversation goes once its last message has gone.
            with store.write(conn):
                cutoff = self.clock() - self.retention(conn) * 1_000_000
                expiring = dict(
                    conn.execute(
                        "SELECT id, last_activity FROM conversations WHERE last_activity <= ? "
                        "ORDER BY last_activity LIMIT 100",
                        (cutoff,),
                    ).fetchall()
                )
                conv_ids = list(expiring)
                if not conv_ids:
                    break
                # What each held before its first slice goes, so its receipt counts it all.
                self.receipts.tally(conn, conv_ids)
                gone = []
                if _delete_message_slice(conn, conv_ids, batch) < batch:
                    for conv_id in conv_ids:
                        counts = self.receipts.counts(conn, [conv_id])
                        if _delete_conversation(conn, conv_id):
                            gone.append(conv_id)
                            pending.append(self.receipts.begin(conn, "expiry", counts, [conv_id]))
                            # How late after its expires_at (last activity + retention) it went.
                            _tally_lag(conn, max(0, cutoff - expiring[conv_id]))
            self.on_deleted(gone, "expiry")
        if pending:
            _count(conn, "conversations_expired", len(pending))
            self.receipts.finish(conn, pending, store.checkpoint(conn))
        return len(pending)

    def delete_all(self, conn: sqlite3.Connection) -> dict:
        """Delete every conversation of the facility (the admin's one-click wipe).

        Returns how many went and the one receipt of the wipe.
        """
        return self.make_room(lambda: self._delete_all(conn))

    def _delete_all(self, conn: sqlite3.Connection) -> dict:
        shed_chunks(conn, "1", (), self.shed_chunks)
        with store.write(conn):
            ids = [r[0] for r in conn.execute("SELECT id FROM conversations")]
            counts = self.receipts.counts(conn, ids)
            for conv_id in ids:
                _delete_conversation(conn, conv_id)
            conn.execute("DELETE FROM throttle")
            pending = self.receipts.begin(conn, "facility_wipe", counts, ids)
        self.on_deleted(ids, "facility_wipe")
        _count(conn, "conversations_deleted", len(ids))
        (receipt,) = self.receipts.finish(conn, [pending], store.checkpoint(conn))
        return {"deleted": len(ids), "receipt": receipt}

    # -- validation and helpers -----------------------------------------------------------

    def _aad(self, table: str, record_id: str, field: str) -> bytes:
        return crypto.aad(self.facility, table, record_id, field)

    def _chunk_aad(self, att_id: str, seq: int, chunks: int) -> bytes:
        return self._aad("attachment_chunks", att_id, f"{seq}/{chunks}")

    @staticmethod
    def _check_filename(filename: object) -> str:
        if not isinstance(filename, str) or not filename.strip():
            raise BadRequest("the file needs a name")
        name = _FILENAME_BAD.sub("_", filename.strip())[-200:]
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BadRequest("file name must be valid UTF-8") from e
        return name


def _delete_message_slice(conn: sqlite3.Connection, conv_ids: list[str], limit: int) -> int:
    """Delete up to `limit` messages of these conversations, with their attachments and keys."""
    conv_marks = ",".join("?" * len(conv_ids))
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM messages WHERE conversation_id IN ({conv_marks}) LIMIT ?",
            (*conv_ids, limit),
        )
    ]
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    conn.execute(
        f"DELETE FROM record_keys WHERE record_id IN (SELECT id FROM attachments "
        f"WHERE message_id IN ({marks}))",
        ids,
    )
    conn.execute(f"DELETE FROM record_keys WHERE record_id IN ({marks})", ids)
    conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", ids)  # cascades to attachments
    return len(ids)


def shed_chunks(conn: sqlite3.Connection, where: str, params: tuple, step: int) -> None:
    """Delete the attachment chunks matching `where`, `step` per transaction, each followed by a
    checkpoint, so the WAL (and the free space it needs) stays small however large they are.

    The attachments' rows stay until their conversation goes; a download meanwhile ends with
    "attachment was deleted", as it would a moment later anyway.
    """
    while True:
        with store.write(conn):
            cur = conn.execute(
                f"DELETE FROM attachment_chunks WHERE rowid IN (SELECT rowid FROM "
                f"attachment_chunks WHERE {where} LIMIT {int(step)})",
                params,
            )
        if cur.rowcount == 0:
            return
        store.checkpoint(conn)


def _delete_conversation(conn: sqlite3.Connection, conv_id: str) -> bool:
    # The cascade removes messages, attachments, chunks and record keys in this transaction.
    return conn.execute("DELETE FROM conversations WHERE id = ?", (conv_id,)).rowcount > 0


def deletions_counter(reason: str) -> str:
    """The counter of conversations deleted for `reason` (the status' deletions.reasons)."""
    return f"deleted_{reason}"


def lag_counter(bucket: int) -> str:
    """The counter of expired conversations deleted in DELETION_LAG_BUCKETS' bucket `bucket`
    (its last index: later than every bound)."""
    return f"deletion_lag_{bucket}"


LAG_SUM_COUNTER = "deletion_lag_sum_ms"


def _tally_lag(conn: sqlite3.Connection, lag_us: int) -> None:
    """One expired conversation deleted `lag_us` µs after its expiry (inside the caller's write)."""
    bucket = bisect.bisect_left(DELETION_LAG_BUCKETS, lag_us / 1e6)
    store.tally(conn, lag_counter(bucket), 1)
    store.tally(conn, LAG_SUM_COUNTER, lag_us // 1000)
    store.tally(conn, deletions_counter("expiry"), 1)


def deletion_report(conn: sqlite3.Connection) -> dict:
    """The status answer's `deletions`: running totals, content-free (how many, how late)."""
    values = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    return {
        DeletionField.REASONS: {r: values.get(deletions_counter(r), 0) for r in REASONS},
        DeletionField.LAG_BUCKETS: [
            values.get(lag_counter(i), 0) for i in range(len(DELETION_LAG_BUCKETS) + 1)
        ],
        DeletionField.LAG_SUM_MS: values.get(LAG_SUM_COUNTER, 0),
    }


def _count(conn: sqlite3.Connection, name: str, n: int) -> None:
    """Content-free tallies: how many, never which."""
    with store.write(conn):
        store.tally(conn, name, n)

"""Signed deletion receipts: content-free proof that a deletion happened, and how completely.

A receipt names no conversation: it has a random id of its own, the facility, the second of the
deletion, why (patient, staff, expiry, facility_wipe) and how many messages, attachments and
record keys went. `verified` is true only if the delete transaction committed, the WAL
checkpoint returned (0, 0, 0), no row of the conversation is left in any table that has a
conversation_id column (read from sqlite_master, so tables added later are checked too), and no
attachment chunk is left without its attachment (chunks carry only their attachment's id: once
the conversation's attachments are gone, any chunk of them left behind is one of these).

A deletion works in two steps: `begin` records the unsigned receipt inside the delete
transaction; `finish`, after the commit and the checkpoint, checks what is left, then signs.
The link from a receipt to its conversation exists only in memory between the two. A receipt
left unsigned by a crash in between is signed later with `verified` false: nobody checked it.
"""

import base64
import json
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from medcell_common import receipts as fmt
from medcell_common.times import iso_utc
from services.facility.core import crypto, store
from services.facility.core.keys import Keyring

KEEP_SECONDS = 365 * 86400  # how long a facility keeps its receipts
ORPHAN_SECONDS = 60  # an unsigned receipt this old was left by a crash, not by a running delete
_COUNTED = ("messages", "attachments", "record_keys")


@dataclass(frozen=True)
class Pending:
    """A receipt begun inside a delete transaction, and what it covers (never stored)."""

    receipt_id: str
    conversation_ids: tuple[str, ...]


class Receipts:
    """One facility's deletion receipts and their signing key."""

    def __init__(self, keyring: Keyring, facility: str, clock: Callable[[], int]):
        self.keyring = keyring
        self.facility = facility
        self.clock = clock

    def public_key(self) -> dict:
        """The receipt key as the contract describes it."""
        public = crypto.verify_key(self.keyring.signing_seed())
        return {"algorithm": fmt.ALGORITHM, "public_key": base64.b64encode(public).decode()}

    # -- inside the delete transaction ----------------------------------------------------

    def tally(self, conn: sqlite3.Connection, conv_ids: list[str]) -> None:
        """Remember what these conversations hold before a deletion in several steps begins."""
        conn.executemany(
            "INSERT OR IGNORE INTO deletion_tallies "
            "(conversation_id, messages, attachments, record_keys) "
            "SELECT ?1, (SELECT count(*) FROM messages WHERE conversation_id = ?1), "
            "(SELECT count(*) FROM attachments WHERE conversation_id = ?1), "
            "(SELECT count(*) FROM record_keys WHERE conversation_id = ?1)",
            [(c,) for c in conv_ids],
        )

    def counts(self, conn: sqlite3.Connection, conv_ids: list[str]) -> dict:
        """What these conversations hold (or held, when their deletion began): call before it."""
        ids = json.dumps(conv_ids)
        tallied = conn.execute(
            "SELECT coalesce(sum(messages), 0), coalesce(sum(attachments), 0), "
            "coalesce(sum(record_keys), 0) FROM deletion_tallies "
            "WHERE conversation_id IN (SELECT value FROM json_each(?))",
            (ids,),
        ).fetchone()
        result = {}
        for name, before in zip(_COUNTED, tallied, strict=True):
            (live,) = conn.execute(
                f"SELECT count(*) FROM {name} WHERE conversation_id IN "
                "(SELECT value FROM json_each(?)) AND conversation_id NOT IN "
                "(SELECT conversation_id FROM deletion_tallies)",
                (ids,),
            ).fetchone()
            result[name] = before + live
        return result

    def begin(
        self, conn: sqlite3.Connection, reason: str, counts: dict, conv_ids: list[str]
    ) -> Pending:
        """Record the unsigned receipt of a deletion in its own transaction."""
        if reason not in fmt.REASONS:
            raise ValueError(f"unknown deletion reason {reason!r}")
        receipt_id = secrets.token_urlsafe(16)
        # Whole seconds: finer times would only help match a receipt to other records.
        deleted_at = self.clock() // 1_000_000 * 1_000_000
        conn.execute(
            "INSERT INTO receipts (receipt_id, deleted_at, reason, messages, attachments, "
            "record_keys) VALUES (?, ?, ?, ?, ?, ?)",
            (receipt_id, deleted_at, reason, *(counts[k] for k in _COUNTED)),
        )
        return Pending(receipt_id, tuple(conv_ids))

    # -- after the commit and the checkpoint ----------------------------------------------

    def finish(
        self, conn: sqlite3.Connection, pending: list[Pending], checkpointed: bool
    ) -> list[dict]:
        """Check that nothing of each deletion is left, sign the receipts, return them."""
        if not pending:
            return []
        with store.write(conn):
            for item in pending:
                verified = checkpointed and rows_left(conn, item.conversation_ids) == 0
                self._sign(conn, item.receipt_id, verified)
        # The receipts themselves went through the WAL: empty it again.
        store.checkpoint(conn)
        return [self.get(conn, item.receipt_id) for item in pending]

    def _sign(self, conn: sqlite3.Connection, receipt_id: str, verified: bool) -> None:
        row = conn.execute(
            "SELECT receipt_id, deleted_at, reason, messages, attachments, record_keys "
            "FROM receipts WHERE receipt_id = ? AND signature IS NULL",
            (receipt_id,),
        ).fetchone()
        if row is None:
            return  # signed meanwhile (as an orphan): that receipt stands
        receipt = self._receipt(row, verified)
        signature = crypto.sign(self.keyring.signing_seed(), fmt.signed_bytes(receipt))
        conn.execute(
            "UPDATE receipts SET verified = ?, signature = ? WHERE receipt_id = ?",
            (int(verified), base64.b64encode(signature).decode(), receipt_id),
        )

    # -- reading and housekeeping ---------------------------------------------------------

    def get(self, conn: sqlite3.Connection, receipt_id: str) -> dict | None:
        """One signed receipt, or None."""
        if not isinstance(receipt_id, str) or not fmt.RECEIPT_ID_RE.fullmatch(receipt_id):
            return None
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM receipts WHERE receipt_id = ? AND signature IS NOT NULL",
            (receipt_id,),
        ).fetchone()
        return None if row is None else self._from_row(row)

    def recent(self, conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
        """The newest signed receipts first."""
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM receipts WHERE signature IS NOT NULL "
            "ORDER BY deleted_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [self._from_row(row) for row in rows]

    def housekeeping(self, conn: sqlite3.Connection) -> int:
        """Sign receipts a crash left unsigned (unverified); forget receipts past their time."""
        now = self.clock()
        with store.write(conn):
            orphans = [
                r[0]
                for r in conn.execute(
                    "SELECT receipt_id FROM receipts WHERE signature IS NULL AND deleted_at < ?",
                    (now - ORPHAN_SECONDS * 1_000_000,),
                )
            ]
            for receipt_id in orphans:
                self._sign(conn, receipt_id, verified=False)
            forgotten = conn.execute(
                "DELETE FROM receipts WHERE deleted_at <= ?", (now - KEEP_SECONDS * 1_000_000,)
            ).rowcount
        return forgotten

    def _receipt(self, row: tuple, verified: bool) -> dict:
        receipt_id, deleted_at, reason, *counts = row
        return {
            "receipt_id": receipt_id,
            "facility": self.facility,
            "deleted_at": iso_utc(deleted_at // 1_000_000),
            "reason": reason,
            "counts": dict(zip(_COUNTED, counts, strict=True)),
            "verified": verified,
        }

    def _from_row(self, row: tuple) -> dict:
        *fields, verified, signature = row
        return {**self._receipt(tuple(fields), bool(verified)), "signature": signature}


_COLUMNS = "receipt_id, deleted_at, reason, messages, attachments, record_keys, verified, signature"


def rows_left(conn: sqlite3.Connection, conv_ids: tuple[str, ...] | list[str]) -> int:
    """Rows of these conversations in any table: conversations, every conversation_id table,
    and attachment chunks whose attachment is gone."""
    ids = json.dumps(list(conv_ids))
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p "
            "WHERE m.type = 'table' AND p.name = 'conversation_id' ORDER BY m.name"
        )
    ]
    queries = [("conversations", "id"), *((t, "conversation_id") for t in tables)]
    loose_chunks = conn.execute(
        "SELECT count(*) FROM attachment_chunks c "
        "WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.id = c.attachment_id)"
    ).fetchone()[0]
    return loose_chunks + sum(
        conn.execute(
            f'SELECT count(*) FROM "{table.replace(chr(34), chr(34) * 2)}" '
            f"WHERE {column} IN (SELECT value FROM json_each(?))",
            (ids,),
        ).fetchone()[0]
        for table, column in queries
    )

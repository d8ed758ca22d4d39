"""The facility without the web: store, keys, conversations and their rules. No Flask here."""

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from services.facility.core import crypto, quota
from services.facility.core.activity import Activity
from services.facility.core.autoreply import AutoReply
from services.facility.core.config import Config
from services.facility.core.conversations import CHUNK_BYTES, SHED_CHUNKS, Conversations
from services.facility.core.keys import Keyring
from services.facility.core.notify import Notifier
from services.facility.core.receipts import Receipts
from services.facility.core.retention import Sweeper
from services.facility.core.settings import retention_seconds
from services.facility.core.space import Space
from services.facility.core.store import Store
from services.facility.core.tombstones import Tombstones

log = logging.getLogger("medcell.facility")


@dataclass
class Facility:
    """One facility's parts, wired together: what the app, the commands and the benchmarks use."""

    config: Config
    clock: Callable[[], int]
    store: Store
    keyring: Keyring
    conversations: Conversations
    space: Space
    notifier: Notifier
    # Set when a deadline moved (new conversation, activity, retention): wakes the deletion job.
    deadlines_changed: threading.Event = field(default_factory=threading.Event)
    # The deletion job, when this process may run it (config.scheduler); started by the server.
    sweeper: Sweeper | None = None
    # This process's requests, which the supervisor reads to decide on sleep.
    activity: Activity = field(default_factory=Activity)
    # What deletions leave outside the database (core/tombstones.py); a restore re-applies them.
    tombstones: Tombstones | None = None


def open_facility(config: Config, clock: Callable[[], int]) -> Facility:
    """Open (and migrate) the store, make sure the keys exist, and wire the conversations."""
    store = Store(config.database)
    store.migrate()
    store.hash_lock = config.data_dir / "argon2.lock"
    keyring = Keyring(config.key_dir, config.facility, clock)
    keyring.ensure(store.conn())
    # The throttle names its rows with a key of this facility's own, never stored beside them.
    store.throttle_key = crypto.derive_key(keyring.signing_seed(), "throttle")
    store.migrate(keyring)  # the steps that re-seal data with the keys (migrations.py)
    deadlines_changed = threading.Event()
    space = Space(config.data_dir, config.space_reserve_bytes)
    space.ensure_reserve()
    store.before_write = space.keep_headroom

    def admit(conn, conv_id: str, nbytes: int) -> None:
        quota.admit(conn, conv_id, nbytes)
        space.admit(conn, nbytes)

    conversations = Conversations(
        keyring=keyring,
        facility=config.facility,
        clock=clock,
        retention=lambda conn: retention_seconds(conn, config.retention),
        max_body_chars=config.max_body_chars,
        max_title_chars=config.max_title_chars,
        max_attachment_bytes=config.max_attachment_bytes,
        receipts=Receipts(keyring, config.facility, clock),
        on_change=deadlines_changed.set,
        admit=admit,
        make_room=space.make_room,
        shed_chunks=max(SHED_CHUNKS, config.space_reserve_bytes // (4 * CHUNK_BYTES)),
    )
    notifier = _notifier(config, clock, keyring, store, conversations)
    _auto_reply(config, conversations)
    tombstones = Tombstones(
        keyring, Path(config.tombstone_dir) if config.tombstone_dir else None, clock
    )

    def on_deleted(conv_ids: list[str], reason: str) -> None:
        try:
            tombstones.drop(conv_ids, reason)
        except Exception:
            # The deletion has committed and stands; what is lost is only its guard against a
            # restore of an older backup, which the operator must hear of.
            log.exception("tombstone_failed", extra={"fields": {"event": "tombstone_failed"}})

    conversations.on_deleted = on_deleted
    sweeper = None
    if config.scheduler:
        sweeper = Sweeper(
            store,
            conversations,
            keyring,
            config.key_rotation_seconds,
            wake=deadlines_changed,
        )
    return Facility(
        config,
        clock,
        store,
        keyring,
        conversations,
        space,
        notifier,
        deadlines_changed,
        sweeper,
        tombstones=tombstones,
    )


def _notifier(
    config: Config,
    clock: Callable[[], int],
    keyring: Keyring,
    store: Store,
    conversations: Conversations,
) -> Notifier:
    """The facility's notifier, with every new message queueing the mails it calls for."""
    notifier = Notifier(
        keyring, config.facility, config.facility_name, clock, config.mail, config.public_url
    )
    if not config.mail:
        # Switched off since they were queued: they would keep the facility from sleeping.
        notifier.discard_all(store.conn())

    def on_message(conn: sqlite3.Connection, conv_id: str, author: str) -> None:
        try:
            notifier.message_added(conn, conv_id, author)
        except Exception:
            # The message is stored already; a mail that cannot be queued must not undo that.
            log.exception("notify_failed", extra={"fields": {"event": "notify_failed"}})

    conversations.on_message = on_message
    return notifier


def _auto_reply(config: Config, conversations: Conversations) -> None:
    """A patient's message may get the practice's automatic reply (after its mails queue)."""
    replier = AutoReply(conversations, ZoneInfo(config.timezone))
    notify = conversations.on_message

    def on_message(conn: sqlite3.Connection, conv_id: str, author: str) -> None:
        notify(conn, conv_id, author)
        if author != "patient":
            return
        try:
            replier.after_patient_message(conn, conv_id)
        except Exception:
            # The patient's message is stored already; a reply that fails must not undo that.
            log.exception("auto_reply_failed", extra={"fields": {"event": "auto_reply_failed"}})

    conversations.on_message = on_message


def usage(facility: Facility) -> dict:
    """The facility's quota, usage and room on its volume: content-free numbers only."""
    conn = facility.store.conn()
    files = [facility.config.database, *(facility.config.data_dir.glob("facility.db-*"))]
    return {
        **quota.usage(conn),
        "file_bytes": sum(f.stat().st_size for f in files if f.exists()),
        "volume_free_bytes": facility.space.free_bytes(),
        "reserve_bytes": facility.space.reserve_held(),
    }

"""The facility without the web: store, keys, conversations and their rules. No Flask here."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from services.facility.core import crypto, passwords, quota, throttle
from services.facility.core import store as database
from services.facility.core.config import Config
from services.facility.core.conversations import CHUNK_BYTES, SHED_CHUNKS, Conversations
from services.facility.core.keys import Keyring
from services.facility.core.receipts import Receipts
from services.facility.core.settings import retention_seconds
from services.facility.core.space import Space
from services.facility.core.store import Store


@dataclass
class Facility:
    """One facility's parts, wired together: what the app, the commands and the benchmarks use."""

    config: Config
    clock: Callable[[], int]
    store: Store
    keyring: Keyring
    conversations: Conversations
    space: Space
    # Set when a deadline moved (new conversation, activity, retention): wakes the deletion job.
    deadlines_changed: threading.Event = field(default_factory=threading.Event)


def open_facility(config: Config, clock: Callable[[], int]) -> Facility:
    """Open (and migrate) the store, make sure the keys exist, and wire the conversations."""
    store = Store(config.database)
    store.migrate()
    passwords.use_hash_lock(config.data_dir / "argon2.lock")
    keyring = Keyring(config.key_dir, config.facility, clock)
    keyring.ensure(store.conn())
    # The throttle names its rows with a key of this facility's own, never stored beside them.
    throttle.use_key(config.database, crypto.derive_key(keyring.signing_seed(), "throttle"))
    store.migrate(keyring)  # the steps that re-seal data with the keys (migrations.py)
    deadlines_changed = threading.Event()
    space = Space(config.data_dir, config.space_reserve_bytes)
    space.ensure_reserve()
    database.before_write(config.database, space.keep_headroom)

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
    return Facility(config, clock, store, keyring, conversations, space, deadlines_changed)


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

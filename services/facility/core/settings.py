"""Facility settings that admins change at run time (stored in the facility's own database)."""

import sqlite3

from medcell_common.rules import format_duration, parse_retention
from services.facility.core import store
from services.facility.core.errors import BadRequest


def retention_seconds(conn: sqlite3.Connection, default: int) -> int:
    row = conn.execute("SELECT value FROM settings WHERE name = 'retention'").fetchone()
    return int(row[0]) if row else default


def set_retention(conn: sqlite3.Connection, text: object) -> int:
    """Store a new retention (at most 7 days); takes effect for every conversation at once."""
    if not isinstance(text, str):
        raise BadRequest("retention must be a duration like '7d', '12h' or '30m'")
    try:
        seconds = parse_retention(text)
    except ValueError as e:
        raise BadRequest(str(e)) from e
    # One statement, atomic by itself; sqlite-utils commits it, so never call this mid-transaction.
    store.table(conn, "settings").upsert({"name": "retention", "value": str(seconds)}, pk="name")
    return seconds


def describe(conn: sqlite3.Connection, facility: str, name: str, default: int) -> dict:
    seconds = retention_seconds(conn, default)
    return {
        "facility": facility,
        "name": name,
        "retention": format_duration(seconds),
        "retention_seconds": seconds,
    }

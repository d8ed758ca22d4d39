"""The facility's contact for patients (phone, opening hours), shown where a patient is stuck."""

import re
import sqlite3

from services.facility.core import store
from services.facility.core.errors import BadRequest

PHONE_RE = re.compile(r"^[0-9+()/. -]{3,40}$")
MAX_HOURS = 300
_NAMES = {"phone": "contact_phone", "hours": "contact_hours"}


def get(conn: sqlite3.Connection) -> dict:
    """{"phone", "hours"}, each "" when not set."""
    rows = dict(
        conn.execute(
            "SELECT name, value FROM settings WHERE name IN (?, ?)", tuple(_NAMES.values())
        ).fetchall()
    )
    return {key: rows.get(name, "") for key, name in _NAMES.items()}


def set_contact(conn: sqlite3.Connection, phone: object, hours: object) -> dict:
    """Store both (an empty value removes it); refuses what a patient could not use."""
    phone, hours = _clean(phone, "phone"), _clean(hours, "hours")
    # Checked as given (what the API document promises), stored without outer spaces.
    if phone and not PHONE_RE.match(phone):
        raise BadRequest("phone may hold 3-40 digits, spaces and + ( ) / . -")
    if len(hours) > MAX_HOURS:
        raise BadRequest(f"hours may be at most {MAX_HOURS} characters")
    phone, hours = phone.strip(), hours.strip()
    with store.write(conn):
        for key, value in (("phone", phone), ("hours", hours)):
            if value:
                conn.execute(
                    "INSERT INTO settings (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (_NAMES[key], value),
                )
            else:
                conn.execute("DELETE FROM settings WHERE name = ?", (_NAMES[key],))
    return {"phone": phone, "hours": hours}


def _clean(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise BadRequest(f"{name} must be text")
    return value

"""The patient reference of a conversation: name, date of birth, practice patient number.

Optional, set by staff, sealed under the conversation's record key like the title (own
associated data), and gone with the conversation's row. It is never shown to the patient's side
of the API, because it is the practice's filing label.
"""

import json
import re
import sqlite3
from datetime import date

from services.facility.core import crypto, store
from services.facility.core.errors import BadRequest, NotFound
from services.facility.core.keys import Keyring

# Field → longest accepted text.
LIMITS = {"name": 200, "birth_date": 10, "number": 64}
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check(value: object) -> dict | None:
    """The reference as stored (only non-empty fields), None if empty; BadRequest if invalid."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("reference must be an object with name, birth_date and/or number")
    unknown = set(value) - set(LIMITS)
    if unknown:
        raise BadRequest(f"reference has unknown fields: {', '.join(sorted(unknown))}")
    result = {}
    for name, limit in LIMITS.items():
        text = value.get(name)
        if text is None:
            continue
        if not isinstance(text, str) or _CONTROL.search(text):
            raise BadRequest(f"reference.{name} must be text on one line")
        if len(text) > limit:
            raise BadRequest(f"reference.{name} may be at most {limit} characters")
        if text.strip():
            result[name] = text.strip()
    if "birth_date" in value and value["birth_date"]:
        result["birth_date"] = _check_date(value["birth_date"])
    return result or None


def _check_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat() if _DATE.match(text) else _bad_date()
    except ValueError:
        return _bad_date()


def _bad_date() -> str:
    raise BadRequest("reference.birth_date must be a date like 1984-03-07")


def seal(key: bytes, facility: str, conv_id: str, reference: dict | None) -> bytes | None:
    """The sealed column value for a checked reference (None stays NULL)."""
    if reference is None:
        return None
    return crypto.seal(key, json.dumps(reference).encode(), _aad(facility, conv_id))


def unseal(key: bytes, facility: str, conv_id: str, sealed: bytes | None) -> dict | None:
    if not sealed:
        return None
    return json.loads(crypto.unseal(key, sealed, _aad(facility, conv_id)))


def get(conn: sqlite3.Connection, keyring: Keyring, facility: str, conv_id: str) -> dict | None:
    """The conversation's reference, or None if it has none."""
    row = conn.execute("SELECT reference FROM conversations WHERE id = ?", (conv_id,)).fetchone()
    if row is None:
        raise NotFound("no such conversation")
    if row[0] is None:
        return None
    return unseal(keyring.record_key(conn, conv_id), facility, conv_id, row[0])


def put(
    conn: sqlite3.Connection, keyring: Keyring, facility: str, conv_id: str, value: object
) -> dict | None:
    """Replace the reference (an empty one removes it); returns what is now stored."""
    reference = check(value)
    with store.write(conn):
        key = keyring.record_key(conn, conv_id)
        updated = conn.execute(
            "UPDATE conversations SET reference = ? WHERE id = ?",
            (seal(key, facility, conv_id, reference), conv_id),
        ).rowcount
    if not updated:
        raise NotFound("no such conversation")
    return reference


def label(reference: dict | None) -> str:
    """One line naming the patient for staff: 'Name · 1984-03-07 · #123', or ''."""
    if not reference:
        return ""
    parts = [reference.get("name", ""), reference.get("birth_date", "")]
    if reference.get("number"):
        parts.append(f"#{reference['number']}")
    return " · ".join(p for p in parts if p)


def _aad(facility: str, conv_id: str) -> bytes:
    return crypto.aad(facility, "conversations", conv_id, "reference")

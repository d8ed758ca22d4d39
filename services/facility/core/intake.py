"""Requests patients start themselves, where the practice enables it.

The practice turns it on and names its categories (e.g. prescription, referral, question about
results): its own words, no patient data, kept in settings. A request opens a new conversation
titled by its category, with the patient's reference (name, date of birth if given) and their
first message, so it lands in the team inbox as waiting for a reply; the patient gets the link.
Requests are limited per client, so the form cannot be used to fill the practice's storage.
"""

import json
import sqlite3

from services.facility.core import patients, references, store, texts, throttle
from services.facility.core.errors import BadRequest, Conflict

SETTING = "intake"
MAX_CATEGORIES, MAX_CATEGORY = 10, 60


def settings(conn: sqlite3.Connection) -> dict:
    """{"enabled", "categories"}: off with none until the practice sets them."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (SETTING,)).fetchone()
    if row is None:
        return {"enabled": False, "categories": []}
    return json.loads(row[0])


def set_settings(conn: sqlite3.Connection, enabled: object, categories: object) -> dict:
    """Store the practice's choice; enabled needs at least one category."""
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        raise BadRequest(f"categories must be a list of at most {MAX_CATEGORIES} names")
    names = []
    for category in categories:
        name = texts.check_text(category, MAX_CATEGORY, "category").strip()
        if not name or not name.isprintable():
            raise BadRequest("each category is text on one line")
        if name.casefold() in (n.casefold() for n in names):
            raise BadRequest("each category may appear once")
        names.append(name)
    if enabled and not names:
        raise BadRequest("requests need at least one category")
    value = {"enabled": enabled, "categories": names}
    with store.write(conn):
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (SETTING, json.dumps(value)),
        )
    return value


def start(
    conn: sqlite3.Connection,
    conversations,
    form: dict,
    client: str,
    now: int,
) -> tuple[str, str]:
    """A patient's request: a new conversation with its first message; returns its id and the
    patient's link token. Every attempt counts against the client (429 past the limit)."""
    current = settings(conn)
    if not current["enabled"]:
        raise Conflict("this practice takes no requests here")
    throttle.check(conn, "intake", client, now)
    throttle.record_failure(conn, "intake", client, now)
    category = form.get("category")
    if category not in current["categories"]:
        raise BadRequest("category must be one of the practice's categories")
    body = texts.check_text(form.get("body"), conversations.max_body_chars, "body").strip()
    if not body:
        raise BadRequest("body must not be empty")
    name = form.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name must not be empty")
    reference = references.check(
        {
            "name": name.strip(),
            **({"birth_date": form["birth_date"]} if form.get("birth_date") else {}),
        }
    )
    pin_hash = patients.hash_pin(conn, form.get("pin") or None)
    conv_id, token = conversations.create(conn, category, pin_hash, reference)
    try:
        conversations.add_message(conn, conv_id, "patient", body)
    except Exception:
        conversations.delete(conn, conv_id, reason="patient")  # no empty conversation stays behind
        raise
    return conv_id, token

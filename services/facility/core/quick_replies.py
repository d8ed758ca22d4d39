"""Quick replies: the facility's own text templates, written by admins, inserted by staff.

They are the practice's texts, not patient data, so they are stored as plain text like staff names.
"""

import re
import sqlite3

from services.facility.core import store, texts
from services.facility.core.errors import Conflict, NotFound

MAX_LABEL = 60
MAX_COUNT = 50


def list_all(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(
        "SELECT id, label, body FROM quick_replies ORDER BY label COLLATE NOCASE, id"
    )
    return [{"id": r[0], "label": r[1], "body": r[2]} for r in rows]


def get(conn: sqlite3.Connection, reply_id: object) -> dict | None:
    """One quick reply by its id (as given in a form or URL), or None."""
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not isinstance(reply_id, (str, int)) or not re.fullmatch(r"[0-9]{1,18}", str(reply_id)):
        return None
    row = conn.execute(
        "SELECT id, label, body FROM quick_replies WHERE id = ?", (int(reply_id),)
    ).fetchone()
    return {"id": row[0], "label": row[1], "body": row[2]} if row else None


def add(conn: sqlite3.Connection, label: object, body: object, max_body: int, now: int) -> dict:
    """Store a new quick reply; the label names it in the list, the body is what gets inserted."""
    label = _text(label, MAX_LABEL, "label")
    body = _text(body, max_body, "body")
    with store.write(conn):
        (count,) = conn.execute("SELECT count(*) FROM quick_replies").fetchone()
        if count >= MAX_COUNT:
            raise Conflict(f"there are {MAX_COUNT} quick replies already: remove one first")
        cursor = conn.execute(
            "INSERT INTO quick_replies (label, body, created_at) VALUES (?, ?, ?)",
            (label, body, now),
        )
    return {"id": cursor.lastrowid, "label": label, "body": body}


def remove(conn: sqlite3.Connection, reply_id: object) -> None:
    found = get(conn, reply_id)
    if found is None:
        raise NotFound("no such quick reply")
    with store.write(conn):
        conn.execute("DELETE FROM quick_replies WHERE id = ?", (found["id"],))


def _text(value: object, limit: int, name: str) -> str:
    text = texts.check_text(value, limit, name)
    return text.strip() if name == "label" else text

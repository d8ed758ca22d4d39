"""What the pages show of a conversation's records: reference, access log, expiry reminder."""

import sqlite3

from flask import request

from services.facility.core import references
from services.facility.core.records import expiring_soon
from services.facility.http.context import now
from services.facility.http.records import records

REFERENCE_FIELDS = ("name", "birth_date", "number")


def conversation_values(conn: sqlite3.Connection, conv_id: str, summary: dict, side: str) -> dict:
    """Template values: the staff see the reference, the patient sees the access log."""
    if side == "staff":
        return {
            "reference": summary.get("reference"),
            "reference_label": references.label(summary.get("reference")),
        }
    return {"access_log": records().accesses(conn, conv_id)}


def form_reference() -> dict:
    """The reference fields of the posted form (validated where they are stored)."""
    return {name: request.form.get(f"ref_{name}", "") for name in REFERENCE_FIELDS}


def home_values(summaries: list[dict]) -> dict:
    """The conversations that expire within a day, to export them before they go."""
    soon = expiring_soon(summaries, now())
    return {"expiring": [{**s, "label": references.label(s.get("reference"))} for s in soon]}

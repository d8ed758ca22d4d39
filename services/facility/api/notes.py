"""Internal notes and assignment over the API (staff only): the patient never sees either."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import accounts
from services.facility.core.config import Config
from services.facility.core.notes import MAX_NOTE_CHARS, Notes
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx, iso

bp = Blueprint("api_notes", __name__)


def notes() -> Notes:
    return Notes(ctx().conversations)


def assignee_json(staff_id: int | None) -> dict | None:
    if staff_id is None:
        return None
    row = conn().execute("SELECT username FROM staff WHERE id = ?", (staff_id,)).fetchone()
    name = accounts.display_names(conn()).get(staff_id)
    return {"username": row[0], "display_name": name} if row else None


@bp.get("/api/v1/conversations/<conv_id>/notes")
@require()
def list_notes(conv_id: str):
    names = accounts.display_names(conn())
    return jsonify(
        notes=[
            {
                "id": n["id"],
                "author_name": names.get(n["staff_id"]),
                "own": n["staff_id"] == g.principal.staff_id,
                "body": n["body"],
                "created_at": iso(n["created_at"]),
            }
            for n in notes().list(conn(), conv_id)
        ]
    )


@bp.post("/api/v1/conversations/<conv_id>/notes")
@require()
def add_note(conv_id: str):
    body = json_body()
    note = notes().add(conn(), conv_id, g.principal.staff_id, body["body"])
    return jsonify(id=note["id"], created_at=iso(note["created_at"])), 201


@bp.put("/api/v1/conversations/<conv_id>/assignee")
@require()
def assign(conv_id: str):
    body = json_body()
    staff_id = notes().assign(conn(), conv_id, body["username"])
    return jsonify(assignee=assignee_json(staff_id))


ASSIGNEE = {
    **doc.obj(["username", "display_name"], username=doc.STR, display_name=doc.STR),
    "nullable": True,
    "description": "the staff account the conversation is assigned to (null: nobody)",
}


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    note = doc.obj(
        ["id", "author_name", "own", "body", "created_at"],
        id=doc.STR,
        author_name={
            "type": "string",
            "nullable": True,
            "description": "the colleague who wrote it (null: an account that is gone)",
        },
        own={"type": "boolean", "description": "the caller wrote it"},
        body=doc.STR,
        created_at=doc.TIME,
    )
    return {
        "/api/v1/conversations/{conv_id}/notes": {
            "get": doc.op(
                "The team's internal notes on a conversation, oldest first (staff; never shown "
                "to the patient)",
                {
                    "500": doc.DAMAGED,
                    "200": doc.json(doc.obj(["notes"], notes={"type": "array", "items": note})),
                    "403": doc.error("Staff only"),
                    "404": doc.NOT_FOUND,
                },
                params=[doc.CONV_ID],
            ),
            "post": doc.op(
                "Add an internal note (staff); sealed like a message, deleted with the "
                "conversation; it does not move the expiry",
                {
                    "201": doc.json(
                        doc.obj(["id", "created_at"], id=doc.STR, created_at=doc.TIME), "Created"
                    ),
                    "403": doc.error("Staff only"),
                    "404": doc.NOT_FOUND,
                    "413": doc.error(
                        "Request body over its size limit, or the conversation is full"
                    ),
                },
                body=doc.body(
                    doc.input_object(["body"], body=patterns.nonblank_text(MAX_NOTE_CHARS))
                ),
                params=[doc.CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/assignee": {
            "put": doc.op(
                "Assign the conversation to an active staff account, or to nobody (staff)",
                {
                    "200": doc.json(doc.obj(["assignee"], assignee=ASSIGNEE)),
                    "403": doc.error("Staff only"),
                    "404": doc.error("No such conversation, or no such active account"),
                },
                body=doc.body(
                    doc.input_object(["username"], username={**patterns.USERNAME, "nullable": True})
                ),
                params=[doc.CONV_ID],
            )
        },
    }

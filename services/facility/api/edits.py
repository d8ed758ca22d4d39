"""Correcting or deleting one's own message over the API, within minutes of sending it."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import edits
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx, iso

bp = Blueprint("api_edits", __name__)

PATH = "/api/v1/conversations/<conv_id>/messages/<msg_id>"


@bp.put(PATH)
@require(patient=True)
def correct_message(conv_id: str, msg_id: str):
    body = json_body()
    who = g.principal
    when = edits.correct(
        ctx().conversations, conn(), conv_id, msg_id, who.kind, who.staff_id, body["body"]
    )
    return jsonify(id=msg_id, edited_at=iso(when))


@bp.delete(PATH)
@require(patient=True)
def delete_message(conv_id: str, msg_id: str):
    who = g.principal
    when = edits.delete(ctx().conversations, conn(), conv_id, msg_id, who.kind, who.staff_id)
    return jsonify(id=msg_id, deleted_at=iso(when))


MSG_ID = {"name": "msg_id", "in": "path", "required": True, "schema": patterns.record_id("message")}
WINDOW = (
    f"Only its writer (the staff account that wrote it, or the conversation's patient) may, "
    f"within {edits.EDIT_WINDOW_SECONDS // 60} minutes of sending it"
)


def _errors() -> dict:
    return {
        "403": doc.error("Not the message's writer (or a patient link whose PIN is owed)"),
        "404": doc.error("No such conversation or message, or not yours"),
        "409": doc.error(
            "edit_window_closed: sent too long ago to change; message_deleted: already deleted"
        ),
    }


def openapi_paths(config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/conversations/{conv_id}/messages/{msg_id}": {
            "put": doc.op(
                f"Correct one's own message. {WINDOW}. The old text and its key are destroyed; "
                "readers see the message marked as corrected (edited_at)",
                {
                    "200": doc.json(doc.obj(["id", "edited_at"], id=doc.STR, edited_at=doc.TIME)),
                    **_errors(),
                    "413": doc.error(
                        "Request body over its size limit, or the conversation is full"
                    ),
                },
                body=doc.body(
                    doc.input_object(["body"], body=patterns.nonblank_text(config.max_body_chars))
                ),
                params=[doc.CONV_ID, MSG_ID],
            ),
            "delete": doc.op(
                f"Delete one's own message with its files. {WINDOW}. Text, files and their keys "
                "are destroyed; readers see the message marked as deleted (deleted_at)",
                {
                    "200": doc.json(doc.obj(["id", "deleted_at"], id=doc.STR, deleted_at=doc.TIME)),
                    **_errors(),
                },
                params=[doc.CONV_ID, MSG_ID],
            ),
        }
    }

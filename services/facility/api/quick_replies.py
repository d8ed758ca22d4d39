"""Quick replies over the API: staff read them, admins add and remove them."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import quick_replies
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx, now

bp = Blueprint("api_quick_replies", __name__)


@bp.get("/api/v1/quick-replies")
@require()
def list_replies():
    return jsonify(quick_replies=quick_replies.list_all(conn()))


@bp.post("/api/v1/quick-replies")
@require(admin=True)
def add_reply():
    body = json_body()
    created = quick_replies.add(
        conn(), body.get("label"), body.get("body"), ctx().config.max_body_chars, now()
    )
    return jsonify(created), 201


@bp.delete("/api/v1/quick-replies/<reply_id>")
@require(admin=True)
def remove_reply(reply_id: str):
    quick_replies.remove(conn(), reply_id)
    return "", 204


def openapi_paths(config: Config) -> dict:
    """The facility's text templates: staff read them, admins add and remove them."""
    reply = doc.obj(["id", "label", "body"], id={"type": "integer"}, label=doc.STR, body=doc.STR)
    new = {
        **doc.obj(
            ["label", "body"],
            label=patterns.nonblank_text(quick_replies.MAX_LABEL),
            body=patterns.nonblank_text(config.max_body_chars),
        ),
        "additionalProperties": False,
    }
    return {
        "/api/v1/quick-replies": {
            "get": doc.op(
                "The quick replies (staff)",
                {
                    "200": doc.json(
                        doc.obj(["quick_replies"], quick_replies={"type": "array", "items": reply})
                    )
                },
            ),
            "post": doc.op(
                "Add a quick reply (admin; at most 50)",
                {
                    "201": doc.json(reply, "Created"),
                    "400": doc.error("Missing, empty or unknown fields"),
                    "403": doc.error("Admins only"),
                    "409": doc.error("There are 50 already"),
                },
                body=doc.body(new),
            ),
        },
        "/api/v1/quick-replies/{reply_id}": {
            "delete": doc.op(
                "Remove a quick reply (admin)",
                {
                    "204": doc.NO_CONTENT,
                    "403": doc.error("Admins only"),
                    "404": doc.error("No such reply"),
                },
                params=[
                    {
                        "name": "reply_id",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "pattern": "^[0-9]{1,18}$",
                            "description": "the quick reply's number",
                        },
                    }
                ],
            )
        },
    }

"""Quick replies over the API: staff read them, admins add and remove them."""

from flask import Blueprint, jsonify

from services.facility.api.validation import json_body
from services.facility.core import quick_replies
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

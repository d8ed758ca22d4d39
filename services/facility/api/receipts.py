"""Deletion receipts over the API: the public key, one receipt by its id, the staff's list."""

import re

from flask import Blueprint, jsonify, request

from services.facility.core import throttle
from services.facility.core.errors import BadRequest, NotFound
from services.facility.http.auth import require
from services.facility.http.context import client_id, conn, ctx, now

bp = Blueprint("receipts_api", __name__)
LIST_LIMIT = 1000


def receipts():
    return ctx()["conversations"].receipts


@bp.get("/api/v1/receipt-key")
def receipt_key():
    return jsonify(receipts().public_key())


@bp.get("/api/v1/receipts/<receipt_id>")
def receipt(receipt_id: str):
    """Anyone with the id: ids are random (128 bits), and a receipt says nothing of content."""
    c, client, t = conn(), client_id(), now()
    throttle.check(c, "token", client, t)
    found = receipts().get(c, receipt_id)
    if found is None:
        throttle.record_failure(c, "token", client, t)
        raise NotFound("no such receipt")
    response = jsonify(found)
    if "download" in request.args:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="receipt-{found["receipt_id"]}.json"'
        )
    return response


@bp.get("/api/v1/receipts")
@require()
def list_receipts():
    raw = request.args.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= LIST_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {LIST_LIMIT}")
    return jsonify(receipts=receipts().recent(conn(), int(raw)))

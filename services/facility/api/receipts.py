"""Deletion receipts over the API: the public key, one receipt by its id, the staff's list."""

from flask import Blueprint, jsonify

from services.facility.api.validation import query
from services.facility.core import throttle
from services.facility.core.errors import NotFound
from services.facility.http.auth import require
from services.facility.http.context import client_id, conn, ctx, now

bp = Blueprint("receipts_api", __name__)


def receipts():
    return ctx().conversations.receipts


@bp.get("/api/v1/receipt-key")
def receipt_key():
    return jsonify(receipts().public_key())


@bp.get("/api/v1/receipts/<receipt_id>")
def receipt(receipt_id: str):
    """Anyone with the id: ids are random (128 bits), and a receipt says nothing of content."""
    download = query("download") is not None
    c, client, t = conn(), client_id(), now()
    throttle.check(c, "token", client, t)
    found = receipts().get(c, receipt_id)
    if found is None:
        throttle.record_failure(c, "token", client, t)
        raise NotFound("no such receipt")
    response = jsonify(found)
    if download:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="receipt-{found["receipt_id"]}.json"'
        )
    return response


@bp.get("/api/v1/receipts")
@require()
def list_receipts():
    limit = query("limit")
    return jsonify(receipts=receipts().recent(conn(), 100 if limit is None else limit))

"""Deletion receipts over the API: the public key, one receipt by its id, the staff's list."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import query
from services.facility.core import throttle
from services.facility.core.config import Config
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


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/receipt-key": {
            "get": doc.op(
                "The Ed25519 public key that signs this facility's deletion receipts",
                {
                    "200": doc.json(
                        {
                            **doc.obj(
                                ["algorithm", "public_key"],
                                algorithm={"type": "string", "enum": ["Ed25519"]},
                                public_key={
                                    "type": "string",
                                    "description": "standard base64 of the 32-byte key",
                                    "pattern": "^[A-Za-z0-9+/]{43}=$",
                                },
                            ),
                            "additionalProperties": False,
                        }
                    )
                },
                auth=False,
            )
        },
        "/api/v1/receipts/{receipt_id}": {
            "get": doc.op(
                "One signed deletion receipt; anyone with its (random) id may fetch it",
                {
                    "200": doc.json(doc.ref("Receipt")),
                    "400": doc.error("'download' with a value, or more than once"),
                    "404": doc.error("No such receipt (or it is past its keeping time)"),
                    "429": doc.error("Too many unknown ids from this client"),
                },
                auth=False,
                params=[
                    {
                        "name": "receipt_id",
                        "in": "path",
                        "required": True,
                        "schema": patterns.record_id("receipt"),
                    },
                    {
                        "name": "download",
                        "in": "query",
                        "required": False,
                        "description": "present, without a value (?download): sent as a file "
                        "download (receipt-<id>.json)",
                        "schema": {"type": "string", "enum": [""]},
                        "allowEmptyValue": True,
                    },
                ],
            )
        },
        "/api/v1/receipts": {
            "get": doc.op(
                "The facility's deletion receipts, newest first (staff)",
                {
                    "200": doc.json(
                        doc.obj(
                            ["receipts"], receipts={"type": "array", "items": doc.ref("Receipt")}
                        )
                    ),
                    "400": doc.error("Bad 'limit'"),
                    "403": doc.error("Staff only"),
                },
                params=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "at most this many (default 100)",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
            )
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "Receipt": {
            **doc.obj(
                [
                    "receipt_id",
                    "facility",
                    "deleted_at",
                    "reason",
                    "counts",
                    "verified",
                    "signature",
                ],
                receipt_id={"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                facility=doc.STR,
                deleted_at=doc.TIME,
                reason={
                    "type": "string",
                    "enum": ["patient", "staff", "expiry", "facility_wipe"],
                },
                counts={
                    **doc.obj(
                        ["messages", "attachments", "record_keys"],
                        messages={"type": "integer", "minimum": 0},
                        attachments={"type": "integer", "minimum": 0},
                        record_keys={"type": "integer", "minimum": 0},
                    ),
                    "additionalProperties": False,
                },
                verified={
                    "type": "boolean",
                    "description": "the delete committed, the WAL checkpoint returned "
                    "(0, 0, 0) and no row of the conversation is left in any table",
                },
                signature={
                    "type": "string",
                    "description": "Ed25519, standard base64, over the canonical JSON "
                    "of all other fields (keys sorted, separators ',' and ':', UTF-8)",
                },
            ),
            "additionalProperties": False,
        },
    }

"""Unread counts for the caller (staff): what the list's badges and the tab title show."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.core import reading
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx

bp = Blueprint("api_unread", __name__)


@bp.get("/api/v1/unread")
@require()
def unread():
    counts = reading.unread_counts(
        conn(), g.principal.staff_id, reading.live_after(ctx().conversations, conn())
    )
    return jsonify(conversations=counts, total=sum(counts.values()))


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/unread": {
            "get": doc.op(
                "Unread patient messages for this staff account, per conversation id",
                {
                    "200": doc.json(
                        doc.obj(
                            ["conversations", "total"],
                            conversations={
                                "type": "object",
                                "additionalProperties": {"type": "integer", "minimum": 1},
                            },
                            total={"type": "integer", "minimum": 0},
                        )
                    ),
                    "403": doc.error("Staff only"),
                },
            )
        },
    }

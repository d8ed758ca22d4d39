"""Storage usage for admins: quota, use and the largest conversations, as numbers only."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.core import usage as facility_usage
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import ctx

bp = Blueprint("usage", __name__)


@bp.get("/api/v1/usage")
@require(admin=True)
def get_usage():
    return jsonify(facility_usage(ctx()))


def _size(description: str) -> dict:
    return {"type": "integer", "minimum": 0, "description": description}


USAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "used_bytes",
        "quota_bytes",
        "quota",
        "used_percent",
        "conversation_quota_bytes",
        "conversation_quota",
        "largest_conversations",
        "file_bytes",
        "volume_free_bytes",
        "reserve_bytes",
    ],
    "properties": {
        "used_bytes": _size("Database pages in use (content, indexes, sealing overhead)"),
        "quota_bytes": _size("The facility's quota, set by the operator"),
        "quota": {"type": "string", "example": "2GiB"},
        "used_percent": {"type": "number", "minimum": 0},
        "conversation_quota_bytes": _size("Each conversation's quota"),
        "conversation_quota": {"type": "string", "example": "200MiB"},
        "largest_conversations": {
            "type": "array",
            "maxItems": 5,
            "description": "Content-free: sizes and counts, no ids or titles",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["bytes", "used_percent", "messages", "attachments"],
                "properties": {
                    "bytes": _size("Sealed message bodies plus attachment contents"),
                    "used_percent": {"type": "number", "minimum": 0},
                    "messages": {"type": "integer", "minimum": 0},
                    "attachments": {"type": "integer", "minimum": 0},
                },
            },
        },
        "file_bytes": _size("The database files on the volume, free pages and WAL included"),
        "volume_free_bytes": _size("Free space left on the data volume"),
        "reserve_bytes": _size("Space held back so that deletion works on a full volume"),
    },
}

FULL = {
    "description": (
        "Nothing was stored: the facility's quota is used up (`facility_full`) or its volume "
        "is full (`storage_full`). Reading and deleting still work."
    ),
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
# Every request that writes may meet a full volume; new content also meets the quota.
WRITING_METHODS = ("post", "put", "patch", "delete")


def openapi_paths(_config: Config) -> dict:
    """The usage endpoint's part of the OpenAPI document (413: any body over 256 KiB)."""
    error = doc.error("Not an admin, or too many failed attempts")
    return {
        "/api/v1/usage": {
            "get": {
                "summary": "Storage quota and usage of the facility (admin)",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": USAGE_SCHEMA}},
                    },
                    "401": error,
                    "403": error,
                    "413": error,
                    "429": error,
                },
            }
        }
    }


def document_storage_full(paths: dict) -> None:
    """Add the 507 answer to every writing operation of the document."""
    for operations in paths.values():
        for method, operation in operations.items():
            if method in WRITING_METHODS:
                operation["responses"].setdefault("507", FULL)

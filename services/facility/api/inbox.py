"""The team inbox over the API (staff): each live conversation with its patient, its last
message and whether the patient waits for a reply."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api.notes import ASSIGNEE
from services.facility.api.validation import query
from services.facility.core import accounts, conversation_list, inbox
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx, iso

bp = Blueprint("api_inbox", __name__)


def row_json(row: dict, names: dict[int, str], logins: dict[int, str]) -> dict:
    message = row["last_message"]
    assigned = row["assigned_to"]
    return {
        "id": row["id"],
        "title": row["title"],
        "patient_name": row["patient_name"],
        "last_activity": iso(row["last_activity"]),
        "expires_at": iso(row["expires_at"]),
        "unread": row["unread"],
        "waiting_since": iso(row["waiting_since"]) if row["waiting_since"] else None,
        "assignee": {"username": logins[assigned], "display_name": names[assigned]}
        if assigned in logins
        else None,
        "last_message": message
        and {
            "id": message["id"],
            "author": message["author"],
            "author_name": names.get(message["staff_id"]) if message["staff_id"] else None,
            "automatic": message["automatic"],
            "preview": message["preview"],
            "files": message["files"],
            "created_at": iso(message["created_at"]),
        },
    }


@bp.get("/api/v1/inbox")
@require()
def list_inbox():
    rows = inbox.listing(
        ctx().conversations,
        conn(),
        g.principal.staff_id,
        query("q") or "",
        query("filter") or "all",
    )
    names = accounts.display_names(conn())
    logins = dict(conn().execute("SELECT id, username FROM staff"))
    return jsonify(conversations=[row_json(r, names, logins) for r in rows])


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    last_message = {
        **doc.obj(
            ["id", "author", "author_name", "preview", "files", "created_at"],
            id=doc.STR,
            author={"type": "string", "enum": ["staff", "patient"]},
            author_name={
                "type": "string",
                "nullable": True,
                "description": "the display name of the colleague who wrote it (null: the "
                "patient, or an account that no longer exists)",
            },
            preview={
                "type": "string",
                "description": f"its text on one line, at most {inbox.PREVIEW_CHARS} "
                "characters (opened for this answer only, stored nowhere)",
            },
            files={"type": "array", "items": doc.STR, "description": "attached file names"},
            created_at=doc.TIME,
            automatic={
                "type": "boolean",
                "description": "the practice's automatic reply sent it (it answers nobody: the "
                "conversation still waits for a reply)",
            },
        ),
        "nullable": True,
    }
    row = doc.obj(
        [
            "id",
            "title",
            "patient_name",
            "last_activity",
            "expires_at",
            "unread",
            "waiting_since",
            "last_message",
            "assignee",
        ],
        id=doc.STR,
        title=doc.STR,
        patient_name={"type": "string", "description": "from the patient reference ('': none)"},
        last_activity=doc.TIME,
        expires_at=doc.TIME,
        unread={
            "type": "integer",
            "minimum": 0,
            "description": "patient messages this account has not been shown yet",
        },
        waiting_since={
            **doc.TIME,
            "nullable": True,
            "description": "the patient wrote last: since their first message after the team's "
            "last one (null: the team wrote last, or nobody wrote yet)",
        },
        last_message=last_message,
        assignee=ASSIGNEE,
    )
    return {
        "/api/v1/inbox": {
            "get": doc.op(
                "The team inbox: live conversations, most recent activity first (staff)",
                {
                    "200": doc.json(
                        doc.obj(["conversations"], conversations={"type": "array", "items": row})
                    ),
                    "403": doc.error("Staff only"),
                },
                params=[
                    {
                        "name": "filter",
                        "in": "query",
                        "required": False,
                        "description": "unread: with patient messages this account has not "
                        "seen; waiting: the patient wrote last; mine: assigned to this account",
                        "schema": {"type": "string", "enum": list(inbox.FILTERS)},
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "required": False,
                        "description": "words that must all occur in the title or the patient "
                        "reference (case-insensitive)",
                        "schema": {"type": "string", "maxLength": conversation_list.MAX_QUERY},
                    },
                ],
            )
        },
    }

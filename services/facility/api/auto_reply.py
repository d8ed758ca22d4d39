"""The automatic reply outside opening hours: staff read it, admins switch it and write it."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import autoreply, contact, opening
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn

bp = Blueprint("api_auto_reply", __name__)


def shown() -> dict:
    hours = contact.get(conn())["hours"]
    return {**autoreply.get(conn()), "hours_known": bool(opening.opening_periods(hours))}


@bp.get("/api/v1/auto-reply")
@require()
def get_auto_reply():
    return jsonify(shown())


@bp.put("/api/v1/auto-reply")
@require(admin=True)
def put_auto_reply():
    body = json_body()
    autoreply.set_auto_reply(conn(), body["enabled"], body.get("text", ""))
    return jsonify(shown())


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    setting = doc.obj(
        ["enabled", "text", "hours_known"],
        enabled={"type": "boolean"},
        text=doc.STR,
        hours_known={
            "type": "boolean",
            "description": "the contact's opening hours name times; without them the practice "
            "is never taken for closed and no automatic reply is sent",
        },
    )
    return {
        "/api/v1/auto-reply": {
            "get": doc.op(
                "The automatic reply a patient's message gets while the practice is closed by "
                "its opening hours (once per conversation and closed period; staff)",
                {"200": doc.json(setting), "403": doc.error("Staff only")},
            ),
            "put": doc.op(
                "Switch the automatic reply on or off and set its text (admin)",
                {
                    "200": doc.json(setting),
                    "400": doc.error("Switched on without a text, or not of the documented form"),
                    "403": doc.error("Admins only"),
                },
                body=doc.body(
                    {
                        "description": 'off ({"enabled": false}, the text optional) or on '
                        '({"enabled": true} with a text that is not only white space)',
                        "anyOf": [
                            doc.input_object(
                                ["enabled"],
                                enabled={"type": "boolean", "enum": [False]},
                                text=patterns.text(autoreply.MAX_CHARS),
                            ),
                            doc.input_object(
                                ["enabled", "text"],
                                enabled={"type": "boolean", "enum": [True]},
                                text=patterns.nonblank_text(autoreply.MAX_CHARS),
                            ),
                        ],
                    }
                ),
            ),
        }
    }

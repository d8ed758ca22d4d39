"""The facility's contact for patients: anyone may read it, admins set it."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import contact
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn

bp = Blueprint("api_contact", __name__)


@bp.get("/api/v1/contact")
def get_contact():
    return jsonify(contact.get(conn()))


@bp.put("/api/v1/contact")
@require(admin=True)
def put_contact():
    body = json_body()
    current = contact.get(conn())
    return jsonify(
        contact.set_contact(
            conn(), body.get("phone", current["phone"]), body.get("hours", current["hours"])
        )
    )


def openapi_paths(_config: Config) -> dict:
    """The facility's phone and opening hours, shown to patients on pages where they are stuck."""
    shown = doc.obj(["phone", "hours"], phone=doc.STR, hours=doc.STR)
    change = {
        "type": "object",
        "properties": {
            "phone": {"type": "string", "pattern": "^([0-9+()/. -]{3,40})?$"},
            "hours": patterns.text(contact.MAX_HOURS),
        },
        "additionalProperties": False,
    }
    return {
        "/api/v1/contact": {
            "get": doc.op(
                "The facility's contact for patients", {"200": doc.json(shown)}, auth=False
            ),
            "put": doc.op(
                "Set the contact (admin); an empty string removes a field",
                {
                    "200": doc.json(shown),
                    "400": doc.error("Invalid phone or hours, or unknown fields"),
                    "403": doc.error("Admins only"),
                },
                body=doc.body(change),
            ),
        }
    }

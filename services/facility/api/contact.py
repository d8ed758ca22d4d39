"""The facility's contact for patients: anyone may read it, admins set it."""

from flask import Blueprint, jsonify

from services.facility.api.validation import json_body
from services.facility.core import contact
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

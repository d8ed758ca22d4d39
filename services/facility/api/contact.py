"""The facility's contact for patients: anyone may read it, admins set it."""

from flask import Blueprint, jsonify

from services.facility.core import contact
from services.facility.core.errors import BadRequest
from services.facility.http.auth import require
from services.facility.http.context import conn, json_body

bp = Blueprint("api_contact", __name__)


@bp.get("/api/v1/contact")
def get_contact():
    return jsonify(contact.get(conn()))


@bp.put("/api/v1/contact")
@require(admin=True)
def put_contact():
    body = json_body()
    if set(body) - {"phone", "hours"} or not all(isinstance(v, str) for v in body.values()):
        raise BadRequest("only 'phone' and 'hours' can be given, as strings")
    current = contact.get(conn())
    return jsonify(
        contact.set_contact(
            conn(), body.get("phone", current["phone"]), body.get("hours", current["hours"])
        )
    )

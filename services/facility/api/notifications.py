"""E-mail notifications in the API: a staff account's opt-in, a patient's address, a link mail."""

from flask import Blueprint, g, jsonify

from services.facility.api.validation import json_body
from services.facility.core.errors import Forbidden
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx

bp = Blueprint("api_notifications", __name__)


def _own_settings() -> dict:
    notifier = ctx().notifier
    return {
        "enabled": notifier.enabled,
        "email": notifier.staff_address(conn(), g.principal.staff_id),
    }


@bp.get("/api/v1/notifications")
@require()
def get_own():
    return jsonify(_own_settings())


@bp.put("/api/v1/notifications")
@require()
def put_own():
    email = json_body()["email"]
    ctx().notifier.set_staff_address(conn(), g.principal.staff_id, email)
    return jsonify(_own_settings())


def _patient_settings(conv_id: str) -> dict:
    notifier = ctx().notifier
    return {"enabled": notifier.enabled, "email_set": notifier.patient_address_set(conn(), conv_id)}


@bp.get("/api/v1/conversations/<conv_id>/notifications")
@require(patient=True)
def get_patient(conv_id: str):
    ctx().conversations.require_live(conn(), conv_id)
    return jsonify(_patient_settings(conv_id))


@bp.put("/api/v1/conversations/<conv_id>/notifications")
@require(patient=True)
def put_patient(conv_id: str):
    if g.principal.kind != "patient":
        raise Forbidden("only the patient sets their own address")
    email = json_body()["email"]
    ctx().conversations.require_live(conn(), conv_id)
    ctx().notifier.set_patient_address(conn(), conv_id, email)
    return jsonify(_patient_settings(conv_id))


@bp.post("/api/v1/conversations/<conv_id>/link-mail")
@require()
def send_link(conv_id: str):
    body = json_body()
    token = body["patient_token"]
    ctx().conversations.require_live(conn(), conv_id)
    ctx().notifier.send_link(conn(), conv_id, token, body["email"])
    return jsonify(queued=True), 202

"""E-mail notifications in the API: a staff account's opt-in, a patient's address, a link mail."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api.validation import json_body
from services.facility.core.config import Config
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
    token = body.get("patient_token")  # without it: the link kept to be sent again
    ctx().conversations.require_live(conn(), conv_id)
    ctx().notifier.send_link(conn(), conv_id, token, body["email"])
    return jsonify(queued=True), 202


EMAIL = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^\s*[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]"
    r"(?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+\s*$",
}


def _email_body() -> dict:
    return {
        "type": "object",
        "required": ["email"],
        "additionalProperties": False,
        "properties": {"email": {**EMAIL, "nullable": True}},
    }


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/notifications": {
            "get": doc.op(
                "Your own e-mail notification (staff): whether mail is set up, your address",
                {"200": doc.json(doc.ref("StaffNotification")), "403": doc.error("Staff only")},
            ),
            "put": doc.op(
                "Opt in with an address, or out with null (staff)",
                {
                    "200": doc.json(doc.ref("StaffNotification")),
                    "400": doc.error("Not one plain e-mail address, or an unknown field"),
                    "403": doc.error("Staff only"),
                    "409": doc.error("E-mail is not set up for this installation"),
                },
                body=doc.body(_email_body()),
            ),
        },
        "/api/v1/conversations/{conv_id}/notifications": {
            "get": doc.op(
                "Whether the conversation's patient is told of answers by e-mail",
                {"200": doc.json(doc.ref("PatientNotification")), "404": doc.NOT_FOUND},
                params=[doc.CONV_ID],
            ),
            "put": doc.op(
                "The patient's address for 'your practice has answered', or null (patient only;"
                " sealed, deleted with the conversation)",
                {
                    "200": doc.json(doc.ref("PatientNotification")),
                    "400": doc.error("Not one plain e-mail address, or an unknown field"),
                    "403": doc.error("Only the conversation's patient"),
                    "404": doc.NOT_FOUND,
                    "409": doc.error("E-mail is not set up for this installation"),
                },
                body=doc.body(_email_body()),
                params=[doc.CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/link-mail": {
            "post": doc.op(
                "Mail the patient link of a PIN-protected conversation (staff; the address is"
                " not kept). Without patient_token the current link is sent again; it stays"
                " valid either way",
                {
                    "202": doc.json(
                        doc.obj(["queued"], queued={"type": "boolean"}), "Queued for the relay"
                    ),
                    "400": doc.error(
                        "Bad address, unknown field, not the current link (stale_link), or no"
                        " link kept to send again (stale_link: make a new link)"
                    ),
                    "403": doc.error("Staff only"),
                    "404": doc.NOT_FOUND,
                    "409": doc.error("The conversation has no PIN, or e-mail is not set up"),
                },
                body=doc.body(
                    {
                        "type": "object",
                        "required": ["email"],
                        "additionalProperties": False,
                        "properties": {"email": EMAIL, "patient_token": doc.STR},
                    }
                ),
                params=[doc.CONV_ID],
            )
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "StaffNotification": doc.obj(
            ["enabled", "email"],
            enabled={"type": "boolean"},
            email={"type": "string", "nullable": True},
        ),
        "PatientNotification": doc.obj(
            ["enabled", "email_set"],
            enabled={"type": "boolean"},
            email_set={"type": "boolean"},
        ),
    }

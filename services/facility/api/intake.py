"""Requests patients start themselves over the API: the practice's settings, and a new request."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api.validation import json_body
from services.facility.core import intake
from services.facility.core.config import Config
from services.facility.core.intake import MAX_CATEGORY
from services.facility.http.auth import require
from services.facility.http.context import client_id, conn, ctx, now, patient_url

bp = Blueprint("api_intake", __name__)


@bp.get("/api/v1/intake")
def get_settings():
    return jsonify(intake.settings(conn()))


@bp.put("/api/v1/intake")
@require(admin=True)
def put_settings():
    body = json_body()
    return jsonify(intake.set_settings(conn(), body["enabled"], body["categories"]))


@bp.post("/api/v1/intake/requests")
def start():
    conv_id, token = intake.start(conn(), ctx().conversations, json_body(), client_id(), now())
    return jsonify(id=conv_id, patient_token=token, patient_url=patient_url(token)), 201


def openapi_paths(config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    settings = doc.ref("IntakeSettings")
    return {
        "/api/v1/intake": {
            "get": doc.op(
                "Whether patients may start a request here, and the practice's categories",
                {"200": doc.json(settings)},
                auth=False,
            ),
            "put": doc.op(
                "Turn patients' requests on or off and name the categories (admin)",
                {
                    "200": doc.json(settings),
                    "400": doc.error("No category while enabled, a repeated or bad category"),
                    "403": doc.error("Admins only"),
                },
                body=doc.body(
                    doc.input_object(
                        ["enabled", "categories"],
                        enabled={"type": "boolean"},
                        # Each category: text on one line, at most 60 characters, once;
                        # at most 10 (checked by core/intake.py).
                        categories={"type": "array"},
                    )
                ),
            ),
        },
        "/api/v1/intake/requests": {
            "post": doc.op(
                "A patient starts a request: a new conversation in the team inbox titled by its"
                " category, with their name (and date of birth) as its reference and their"
                " message; the answer holds the link to keep. At most 3 per client an hour",
                {
                    "201": doc.json(
                        doc.obj(
                            ["id", "patient_token", "patient_url"],
                            id=doc.STR,
                            patient_token=doc.STR,
                            patient_url=doc.STR,
                        ),
                        "The new conversation",
                    ),
                    "400": doc.error("Unknown category, empty name or message, a bad PIN or date"),
                    "409": doc.error("This practice takes no requests here"),
                    "429": doc.error("Too many requests from this client; see Retry-After"),
                },
                auth=False,
                body=doc.body(
                    doc.input_object(
                        ["category", "name", "body"],
                        category={"type": "string", "maxLength": MAX_CATEGORY},
                        name={"type": "string", "maxLength": 200},
                        birth_date={"type": "string", "format": "date"},
                        body={"type": "string", "maxLength": config.max_body_chars},
                        pin={"type": "string", "pattern": "^[0-9]{4,8}$"},
                    )
                ),
            )
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "IntakeSettings": doc.obj(
            ["enabled", "categories"],
            enabled={"type": "boolean"},
            categories={"type": "array", "items": doc.STR},
        ),
    }

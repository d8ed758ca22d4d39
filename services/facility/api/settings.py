"""The facility's settings over the API: staff read them, admins change the retention."""

from flask import Blueprint, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import settings
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import (
    conn,
    ctx,
    deadlines_changed,
)

bp = Blueprint("settings_api", __name__)


@bp.get("/api/v1/settings")
@require()
def get_settings():
    config = ctx().config
    return jsonify(
        settings.describe(conn(), config.facility, config.facility_name, config.retention)
    )


@bp.put("/api/v1/settings")
@require(admin=True)
def put_settings():
    settings.set_retention(conn(), json_body()["retention"])
    deadlines_changed()
    return get_settings()


# -- the OpenAPI document -----------------------------------------------------------------


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/settings": {
            "get": doc.op("Facility settings (staff)", {"200": doc.json(doc.ref("Settings"))}),
            "put": doc.op(
                "Change the retention (admin)",
                {
                    "200": doc.json(doc.ref("Settings")),
                    "400": doc.error("Invalid retention"),
                    "403": doc.error("Admins only"),
                },
                body=doc.body(doc.input_object(["retention"], retention=patterns.retention())),
            ),
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "Settings": doc.obj(
            ["facility", "retention", "retention_seconds"],
            facility=doc.STR,
            name=doc.STR,
            retention=doc.STR,
            retention_seconds={"type": "integer"},
        ),
    }

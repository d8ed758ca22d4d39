"""Links that reach the patient over the API: the practice's link-mail text, and a patient's
request for their link by address (the same answer whether the address is known or not)."""

from flask import Blueprint, jsonify

from medcell_common.notifications import TEMPLATE_MAX, TEMPLATE_PLACEHOLDERS
from services.facility.api import document as doc
from services.facility.api.notifications import EMAIL
from services.facility.api.validation import json_body
from services.facility.core import links
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import client_id, conn, ctx, now

bp = Blueprint("api_links", __name__)

REQUESTED = {"status": "accepted"}  # the one answer to every well-formed request


def _template() -> dict:
    return {
        "enabled": ctx().notifier.enabled,
        "text": links.template(conn()),
        "placeholders": [f"{{{name}}}" for name in TEMPLATE_PLACEHOLDERS],
    }


@bp.get("/api/v1/link-mail-template")
@require()
def get_template():
    return jsonify(_template())


@bp.put("/api/v1/link-mail-template")
@require(admin=True)
def put_template():
    links.set_template(conn(), json_body()["text"])
    return jsonify(_template())


@bp.post("/api/v1/link-requests")
def request_link():
    email = json_body()["email"]
    ctx().notifier.request_link(conn(), email, client_id(), now())
    return jsonify(REQUESTED), 202


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    text = {"type": "string", "maxLength": TEMPLATE_MAX, "nullable": True}
    return {
        "/api/v1/link-mail-template": {
            "get": doc.op(
                "The practice's text for the link mail (null: the standard text)",
                {"200": doc.json(doc.ref("LinkMailTemplate")), "403": doc.error("Staff only")},
            ),
            "put": doc.op(
                "Set the practice's link-mail text, or null for the standard one (admin). Plain"
                " lines; {link} exactly once, {praxis} where wanted, no other web address",
                {
                    "200": doc.json(doc.ref("LinkMailTemplate")),
                    "400": doc.error(
                        "A placeholder other than {praxis} and {link}, {link} missing"
                        " or twice, a web address, a control character, too long"
                    ),
                    "403": doc.error("Admins only"),
                },
                body=doc.body(doc.input_object(["text"], text=text)),
            ),
        },
        "/api/v1/link-requests": {
            "post": doc.op(
                "A patient who lost their link asks for it by e-mail address. The answer is the"
                " same whether or not the practice knows the address; where it does (set by the"
                " patient for notifications, link protected by a PIN), the link is mailed there",
                {
                    "202": doc.json(
                        doc.obj(["status"], status={"type": "string", "enum": ["accepted"]}),
                        "Accepted (said of every well-formed request)",
                    ),
                    "400": doc.error("Not one plain e-mail address, or an unknown field"),
                    "409": doc.error("E-mail is not set up for this installation"),
                    "429": doc.error("Too many requests from this client; see Retry-After"),
                },
                auth=False,
                body=doc.body(doc.input_object(["email"], email=EMAIL)),
            )
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "LinkMailTemplate": doc.obj(
            ["enabled", "text", "placeholders"],
            enabled={"type": "boolean"},
            text={"type": "string", "nullable": True},
            placeholders={"type": "array", "items": doc.STR},
        ),
    }

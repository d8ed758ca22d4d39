"""The OpenAPI 3 description of the facility API, served at /api/v1/openapi.json.

Each API module carries its own paths (`openapi_paths(config)`) and the schemas they refer to
(`openapi_schemas()`); this module puts them together and serves the document.
"""

import functools

from flask import Blueprint, Flask, jsonify

from services.facility.api import (
    accounts,
    auto_reply,
    contact,
    conversations,
    edits,
    inbox,
    intake,
    links,
    notes,
    notifications,
    quick_replies,
    receipts,
    records,
    sessions,
    settings,
    staff,
    unread,
    usage,
    validation,
)
from services.facility.api import document as doc
from services.facility.core.config import Config
from services.facility.http.context import ctx

# In the document's order.
MODULES = (
    sessions,
    conversations,
    edits,
    inbox,
    notes,
    settings,
    staff,
    usage,
    receipts,
    records,
    notifications,
    links,
    intake,
    unread,
    accounts,
    quick_replies,
    contact,
    auto_reply,
)

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
def openapi():
    return jsonify(spec(ctx().config))


def init_app(app: Flask) -> None:
    """Serve the document, and give the request checks (api/validation.py) their copy."""
    app.register_blueprint(bp)
    app.extensions[validation.DOCUMENT] = document


def init_api(app: Flask) -> None:
    """Register every API module's routes and the document that describes them."""
    for module in MODULES:
        app.register_blueprint(module.bp)
    init_app(app)


@functools.cache
def document(config: Config) -> dict:
    return spec(config)


def openapi_paths(_config: Config) -> dict:
    return {
        "/api/v1/openapi.json": {
            "get": doc.op("This document", {"200": doc.json({"type": "object"})}, auth=False)
        }
    }


def spec(config: Config) -> dict:
    """The document, with this facility's limits filled in."""
    paths = {}
    schemas = {
        "Error": doc.obj(
            ["error"], error=doc.obj(["code", "message"], code=doc.STR, message=doc.STR)
        )
    }
    for module in MODULES:
        paths.update(module.openapi_paths(config))
        # Not every module has schemas of its own to add.
        schemas.update(getattr(module, "openapi_schemas", dict)())
    paths.update(openapi_paths(config))
    usage.document_storage_full(paths)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"medcell facility API ({config.facility})",
            "version": "1",
            "description": "A value outside its schema (a text over its maxLength included) is "
            "answered 400; 413 means only a request body over its size limit (or a full "
            "conversation); 415 an attachment that is not an allowed type.",
        },
        # Relative to where the document is served (…/api/v1/openapi.json): the facility's root,
        # the root of its own origin. The paths below start with /api/v1 themselves.
        "servers": [{"url": "../.."}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    }

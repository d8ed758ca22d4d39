"""The building blocks of the OpenAPI document, which each API module uses for its own paths."""

from services.facility.api import patterns
from services.facility.core import uploads


def error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def op(
    summary: str,
    responses: dict,
    *,
    auth: bool = True,
    body: dict | None = None,
    params: list | None = None,
) -> dict:
    op = {"summary": summary, "responses": responses}
    if not auth:
        op["security"] = []
    else:
        responses.setdefault("401", error("Missing, invalid or expired token"))
        responses.setdefault(
            "403", error("Not allowed for this caller (or a patient link whose PIN is owed)")
        )
        responses.setdefault("429", error("Too many failed attempts"))
    # Every route refuses a body above its limit before reading it (256 KiB; uploads: the maximum).
    responses.setdefault("413", error("The request body is over its size limit"))
    if body or params:
        # A value outside its schema, a text over its maxLength included, is a validation error.
        responses.setdefault("400", error("A value outside the documented schema"))
    if any(p.get("in") == "path" for p in params or ()):
        # The gateway refuses these before the facility sees them (gateway/templates/maps.conf).
        refused = responses["400"]
        responses["400"] = {**refused, "description": f"{refused['description']}; {GATEWAY_400}"}
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def obj(required: list[str], **props: dict) -> dict:
    # OpenAPI 3.0 wants `required` left out rather than empty.
    return {"type": "object", **({"required": required} if required else {}), "properties": props}


def input_object(required: list[str], **props: dict) -> dict:
    """A request object: the app refuses fields it does not know (api/validation.py)."""
    return {**obj(required, **props), "additionalProperties": False}


def link(path: str, method: str, description: str, **parameters: str) -> dict:
    """An OpenAPI link: where a response's values lead (clients and fuzzers follow them)."""
    ref = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{ref}/{method}",
        "description": description,
        "parameters": parameters,
    }


GATEWAY_400 = (
    "or, from the gateway, a path with control characters, an encoded '/', '\\' or '%', "
    "dot segments, or percent-encodings that are not UTF-8"
)
STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
NO_CONTENT = {"description": "Done"}
UPLOADS = uploads.ALLOWED_TEXT
DAMAGED = error(
    "record_damaged: a record fails its integrity check (altered in the database outside "
    "medcell: moved, its author or time changed); nothing of it is shown as genuine"
)
CONV_ID = {
    "name": "conv_id",
    "in": "path",
    "required": True,
    "schema": patterns.record_id("conversation"),
}
NOT_FOUND = error("No such conversation, or not yours")

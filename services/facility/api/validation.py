"""Requests checked against the OpenAPI document itself, so it cannot promise more or less.

A view calls `json_body()`, `form()` or `query()` after authentication; each looks up the operation
that the current Flask route serves in the app's OpenAPI document and applies its schema. Only the
part of JSON Schema that the document uses is implemented (type, nullable, anyOf, required,
properties, additionalProperties, enum, pattern, minLength/maxLength, minimum/maximum, the formats
date and binary): anything else in a schema is a mistake, refused at the first request that meets
it rather than silently ignored.
"""

import functools
import re
from datetime import date

from flask import current_app, request

from services.facility.core.errors import BadRequest, FacilityError, TooLong
from services.facility.http import context

KNOWN = frozenset(
    {
        "type",
        "required",
        "properties",
        "additionalProperties",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "description",
        "format",
        "nullable",
        "anyOf",
    }
)
# What `format` may say in a request schema: binary is a file part of a form (see `form`).
FORMATS = frozenset({"date", "binary"})
INTEGER = re.compile(r"-?[0-9]{1,18}")
# Where the app keeps the document's builder (api/openapi.py puts it there): it names every API
# module, and they all import this one.
DOCUMENT = "medcell.openapi"
TYPES = {"object": dict, "string": str, "integer": int, "boolean": bool, "array": list}


@functools.cache
def _regex(pattern: str) -> re.Pattern:
    # JSON Schema patterns are ECMA-262: there `$` matches only at the very end, while Python's
    # also matches before a final newline, which would let "1234\n" pass as a PIN.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def operation() -> dict:
    """The document's operation for this request's route and method."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", request.url_rule.rule)
    doc = current_app.extensions[DOCUMENT](context.ctx().config)
    return doc["paths"][path][request.method.lower()]


def json_body() -> dict:
    """The request's JSON object, checked against the operation's schema (none sent: `{}`)."""
    body_spec = operation().get("requestBody", {})
    if not request.content_length and not body_spec.get("required", False):
        return {}
    data = context.json_body()
    check(data, body_spec["content"]["application/json"]["schema"], "the request body")
    return data


def form() -> dict:
    """The multipart form's text fields, checked against the operation's schema; files apart."""
    schema = operation()["requestBody"]["content"]["multipart/form-data"]["schema"]
    properties = schema["properties"]
    extra = sorted((set(request.form) | set(request.files)) - set(properties))
    if extra:
        raise BadRequest(f"the form has unknown fields: {', '.join(extra)}")
    for name in schema.get("required", []):
        binary = properties[name].get("format") == "binary"
        if name not in (request.files if binary else request.form):
            what = f"a file part '{name}' with a file name" if binary else f"a field '{name}'"
            raise BadRequest(f"the form needs {what}")
    for name, value in request.form.items():
        check(value, properties[name], f"'{name}'")
    return request.form


def query(name: str) -> str | int | None:
    """A query parameter, checked against the operation's parameter of that name (an integer
    parameter comes back as an int)."""
    params = [p for p in operation().get("parameters", []) if p["in"] == "query"]
    (param,) = [p for p in params if p["name"] == name]
    unknown = sorted(set(request.args) - {p["name"] for p in params})
    if unknown:
        # Like an unknown field of a body: a misspelt parameter must not be silently ignored.
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    values = request.args.getlist(name)
    if not values:
        if param.get("required"):
            raise BadRequest(f"the query parameter '{name}' is required")
        return None
    if len(values) > 1:
        raise BadRequest(f"give the query parameter '{name}' once")
    value: str | int = values[0]
    if param["schema"].get("type") == "integer":
        if not INTEGER.fullmatch(value):
            raise BadRequest(f"the query parameter '{name}' must be a whole number")
        value = int(value)
    check(value, param["schema"], f"the query parameter '{name}'")
    return value


def check(value: object, schema: dict, name: str) -> None:
    """Raise BadRequest (TooLong for a text over its maxLength) unless value fits."""
    unknown = set(schema) - KNOWN
    if unknown:
        raise FacilityError(f"unsupported schema keywords {sorted(unknown)}")
    if value is None and schema.get("nullable", False):
        return
    if "anyOf" in schema and not any(_fits(value, sub, name) for sub in schema["anyOf"]):
        raise BadRequest(f"{name} must be {schema.get('description', 'of the documented form')}")
    kind = schema.get("type")
    if kind is not None and not _is_type(value, kind):
        raise BadRequest(f"{name} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise BadRequest(f"{name} must be one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        _check_string(value, schema, name)
    elif isinstance(value, int) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low or high is not None and value > high:
            if high is None:
                raise BadRequest(f"{name} must be at least {low}")
            if low is None:
                raise BadRequest(f"{name} must be at most {high}")
            raise BadRequest(f"{name} must be from {low} to {high}")
    elif isinstance(value, dict):
        _check_object(value, schema, name)


def _fits(value: object, schema: dict, name: str) -> bool:
    try:
        check(value, schema, name)
    except BadRequest:
        return False
    return True


def _is_type(value: object, kind: str) -> bool:
    # JSON has no separate booleans among integers, Python does.
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, TYPES[kind])


def _check_string(value: str, schema: dict, name: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest(f"{name} must be valid Unicode text") from e
    if len(value) < schema.get("minLength", 0):
        raise BadRequest(f"{name} must be at least {schema['minLength']} characters")
    if len(value) > schema.get("maxLength", len(value)):
        raise TooLong(f"{name} may be at most {schema['maxLength']} characters")
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        raise BadRequest(f"{name} must be {schema.get('description', 'of the documented form')}")
    if "format" in schema:
        _check_format(value, schema["format"], name)


def _check_format(value: str, format_: str, name: str) -> None:
    if format_ not in FORMATS:
        raise FacilityError(f"unsupported schema format {format_!r}")
    # RFC 3339 full-date: exactly YYYY-MM-DD and a day the calendar has (no 2023-02-29).
    if format_ == "date":
        try:
            valid = len(value) == 10 and date.fromisoformat(value).isoformat() == value
        except ValueError:
            valid = False
        if not valid:
            raise BadRequest(f"{name} must be a calendar date like 1984-03-07")


def _check_object(value: dict, schema: dict, name: str) -> None:
    properties = schema.get("properties", {})
    for field in schema.get("required", []):
        if field not in value:
            raise BadRequest(f"{name} needs the field '{field}'")
    if schema.get("additionalProperties", True) is False:
        extra = sorted(set(value) - set(properties))
        if extra:
            raise BadRequest(f"{name} has unknown fields: {', '.join(extra)}")
    for field, field_schema in properties.items():
        if field in value:
            check(value[field], field_schema, f"'{field}'")

"""API for filing a conversation: its patient reference, exports and the patient's access log."""

from flask import Blueprint, g, jsonify, request

from services.facility.api import document as doc
from services.facility.api.validation import json_body, query
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn, iso
from services.facility.http.records import export_response, records

bp = Blueprint("api_records", __name__)
LANGUAGES = ("de", "en")


def export_language() -> str:
    """?lang= if given, else the caller's Accept-Language, else German."""
    lang = query("lang")
    if lang is not None:
        return lang
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


@bp.get("/api/v1/conversations/<conv_id>/export")
@require()
def export(conv_id: str):
    format_, lang = query("format"), export_language()
    return export_response(conv_id, format_, g.principal, lang, query("notes") == "1")


@bp.get("/api/v1/conversations/<conv_id>/reference")
@require()
def get_reference(conv_id: str):
    return jsonify(reference=records().reference(conn(), conv_id))


@bp.put("/api/v1/conversations/<conv_id>/reference")
@require()
def put_reference(conv_id: str):
    return jsonify(reference=records().set_reference(conn(), conv_id, json_body()))


@bp.get("/api/v1/conversations/<conv_id>/access-log")
@require(patient=True)
def access_log(conv_id: str):
    entries = records().accesses(conn(), conv_id)
    return jsonify(entries=[{**e, "at": iso(e["at"])} for e in entries])


def openapi_paths(_config: Config) -> dict:
    """Patient reference, exports and the patient's access log."""
    reference = doc.json(doc.obj(["reference"], reference=doc.ref("Reference")))
    return {
        "/api/v1/conversations/{conv_id}/export": {
            "get": doc.op(
                "Export the conversation for the patient record (staff); logged for the patient",
                {
                    "500": doc.DAMAGED,
                    "200": {
                        "description": "A download: a printable PDF, or a FHIR R4 Bundle of "
                        "one Communication per message with attachments inline",
                        "headers": {"Content-Disposition": {"schema": doc.STR}},
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                            # Any JSON value to a generic validator: it is FHIR's own schema.
                            "application/fhir+json": {
                                "schema": {"description": "a FHIR R4 Bundle resource (JSON)"}
                            },
                        },
                    },
                    "400": doc.error("Unknown format or language"),
                    "403": doc.error("Staff only"),
                    "404": doc.NOT_FOUND,
                    "413": doc.error(
                        "export_too_large: more text than one PDF holds (1,000,000 characters); "
                        "FHIR has no such limit"
                    ),
                },
                params=[
                    doc.CONV_ID,
                    {
                        "name": "format",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "enum": ["pdf", "fhir"]},
                    },
                    {
                        "name": "lang",
                        "in": "query",
                        "required": False,
                        "description": "language of the PDF and of display texts (default: "
                        "Accept-Language, else de)",
                        "schema": {"type": "string", "enum": ["de", "en"]},
                    },
                    {
                        "name": "notes",
                        "in": "query",
                        "required": False,
                        "description": "1: the team's internal notes go into the PDF too (a "
                        "FHIR export never carries them)",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                    },
                ],
            )
        },
        "/api/v1/conversations/{conv_id}/reference": {
            "get": doc.op(
                "The conversation's patient reference (staff); null if none",
                {"200": reference, "403": doc.error("Staff only"), "404": doc.NOT_FOUND},
                params=[doc.CONV_ID],
            ),
            "put": doc.op(
                "Replace the patient reference (staff); empty fields remove it",
                {
                    "200": reference,
                    "400": doc.error("Invalid reference"),
                    "403": doc.error("Staff only"),
                    "404": doc.NOT_FOUND,
                },
                body=doc.body(reference_input()),
                params=[doc.CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/access-log": {
            "get": doc.op(
                "Which staff account opened, downloaded or exported what, newest first "
                "(staff, and the conversation's own patient)",
                {
                    "500": doc.DAMAGED,
                    "200": doc.json(
                        doc.obj(["entries"], entries={"type": "array", "items": doc.ref("Access")})
                    ),
                    "404": doc.NOT_FOUND,
                },
                params=[doc.CONV_ID],
            )
        },
    }


def reference_input(nullable: bool = False) -> dict:
    """The patient reference staff send (null in a new conversation: none)."""
    fields = {
        "name": {"type": "string", "maxLength": 200},
        "birth_date": {
            "type": "string",
            "anyOf": [
                {"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                {"maxLength": 0},
            ],
            "description": "a calendar date, e.g. 1984-03-07 (empty: none)",
        },
        "number": {"type": "string", "maxLength": 64, "description": "the practice's number"},
    }
    schema = {
        "type": "object",
        "description": "optional patient reference; one line each, surrounding spaces trimmed, "
        "empty fields ignored",
        "properties": {
            name: {
                **field,
                "nullable": True,
                # one line of text: no control characters (a date has its own rule)
                **({} if "anyOf" in field else {"pattern": "^[^\\x00-\\x1f\\x7f]*$"}),
            }
            for name, field in fields.items()
        },
        "additionalProperties": False,
    }
    return {**schema, "nullable": True} if nullable else schema


def openapi_schemas() -> dict:
    return {
        "Reference": {
            "type": "object",
            "nullable": True,
            "properties": {name: doc.STR for name in ("name", "birth_date", "number")},
            "additionalProperties": False,
        },
        "Access": doc.obj(
            ["who", "action", "item", "at"],
            who={
                "type": "string",
                "description": "the staff account, by its display name (the login only for an "
                "account gone before display names existed)",
            },
            action={"type": "string", "enum": ["open", "download", "export_pdf", "export_fhir"]},
            item={"type": "string", "description": "the file, for a download; else empty"},
            at=doc.TIME,
        ),
    }

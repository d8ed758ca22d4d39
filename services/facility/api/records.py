"""API for filing a conversation: its patient reference, exports and the patient's access log."""

from flask import Blueprint, g, jsonify, request

from services.facility.api.validation import json_body, query
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
    return export_response(conv_id, format_, g.principal, lang)


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

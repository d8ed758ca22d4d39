"""Staff pages for filing a conversation: export it (PDF, FHIR) and edit its patient reference."""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core.errors import BadRequest, ExportTooLarge
from services.facility.http.context import conn
from services.facility.http.records import export_response, records
from services.facility.pages import common as web
from services.facility.pages.guards import staff_page
from services.facility.pages.record_views import form_reference
from services.facility.pages.views import render_conversation

bp = Blueprint("records", __name__)


@bp.get("/staff/c/<conv_id>/export")
@staff_page()
def export(conv_id: str):
    fmt = request.args.get("format")
    if fmt not in ("pdf", "fhir"):
        return render_conversation(conv_id, status=400, error=web.t("records.bad_format"))
    with_notes = request.args.get("notes") == "1"
    try:
        return export_response(conv_id, fmt, g.staff, g.lang, with_notes)
    except ExportTooLarge:
        return render_conversation(conv_id, status=413, error=web.t("records.too_large"))


@bp.post("/staff/c/<conv_id>/reference")
@staff_page()
def reference(conv_id: str):
    try:
        records().set_reference(conn(), conv_id, form_reference())
    except BadRequest:
        return render_conversation(conv_id, status=400, error=web.t("records.bad_reference"))
    return redirect(f"{url_for('staff.conversation', conv_id=conv_id)}#records-h", 303)

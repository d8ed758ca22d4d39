"""The records facade for request handlers, and an export as a download."""

from urllib.parse import quote

from flask import Response, stream_with_context

from services.facility.core.accounts import Principal
from services.facility.core.records import Records
from services.facility.http.context import conn, ctx


def records() -> Records:
    config = ctx().config
    return Records(ctx().conversations, config.facility_name, config.timezone)


def export_response(
    conv_id: str, fmt: object, who: Principal, lang: str, notes: bool = False
) -> Response:
    """The export as a download that no cache keeps; written to no disk on the way."""
    export = records().export(conn(), conv_id, fmt, who.username or "", lang, notes)
    response = Response(stream_with_context(iter(export.body)), mimetype=export.content_type)
    # The name is ASCII letters, digits, "-" and "." only: the plain form is the same name.
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{export.filename}\"; filename*=UTF-8''{quote(export.filename)}"
    )
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response

"""An attachment as a streamed download, for the API and the pages alike."""

from urllib.parse import quote

from flask import Response, request, stream_with_context

from services.facility.core.accounts import Principal
from services.facility.core.errors import NotFound
from services.facility.http.context import conn, ctx
from services.facility.http.records import records

INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}


def attachment_response(att_id: str, who: Principal) -> Response:
    """The attachment's bytes, if `who` may read it (staff, or its conversation's patient)."""
    conversations = ctx().conversations
    conv_id, meta, size = conversations.attachment(conn(), att_id)
    if who.kind == "patient" and conv_id != who.conversation_id:
        raise NotFound("no such attachment")
    if who.kind == "staff":
        # The patient can see that (and which file) their practice looked at.
        records().downloaded(conn(), conv_id, who.username or "", meta["filename"])
    chunks = conversations.attachment_bytes(conn(), att_id)
    inline = meta["content_type"] in INLINE_TYPES and request.args.get("download") is None
    response = Response(
        stream_with_context(chunks),
        mimetype=meta["content_type"] if inline else "application/octet-stream",
    )
    response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = (
        f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(meta['filename'])}"
    )
    # A file from a patient must never run as a page of ours.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response

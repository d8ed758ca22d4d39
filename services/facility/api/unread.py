"""Unread counts for the caller (staff): what the list's badges and the tab title show."""

from flask import Blueprint, g, jsonify

from services.facility.core import reading
from services.facility.http.auth import require
from services.facility.http.context import conn, ctx

bp = Blueprint("api_unread", __name__)


@bp.get("/api/v1/unread")
@require()
def unread():
    counts = reading.unread_counts(
        conn(), g.principal.staff_id, reading.live_after(ctx().conversations, conn())
    )
    return jsonify(conversations=counts, total=sum(counts.values()))

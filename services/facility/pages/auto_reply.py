"""The admin's automatic reply outside opening hours (core/autoreply.py)."""

from flask import Blueprint, redirect, request, url_for

from services.facility.core import autoreply
from services.facility.core.errors import BadRequest
from services.facility.http.context import conn
from services.facility.pages import common as web
from services.facility.pages.guards import staff_page
from services.facility.pages.views import render_admin

bp = Blueprint("auto_reply", __name__)


@bp.post("/staff/admin/auto-reply")
@staff_page(admin=True)
def save():
    enabled = request.form.get("enabled") == "on"
    text = request.form.get("text", "")
    try:
        autoreply.set_auto_reply(conn(), enabled, text)
    except BadRequest:
        return render_admin(
            auto_reply_error=web.t("auto.bad", n=autoreply.MAX_CHARS),
            auto_reply_value={"enabled": enabled, "text": text},
            status=400,
        )
    return redirect(f"{url_for('admin.admin')}?auto=saved#auto-h", 303)

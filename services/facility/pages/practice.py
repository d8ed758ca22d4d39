"""The admin's practice texts: quick replies for the compose form, and the contact for patients."""

from flask import Blueprint, redirect, request, url_for

from services.facility.core import contact, quick_replies
from services.facility.core.errors import BadRequest, Conflict, PayloadTooLarge
from services.facility.http.context import conn, ctx, now
from services.facility.pages import common as web
from services.facility.pages.guards import staff_page
from services.facility.pages.views import render_admin

bp = Blueprint("practice", __name__)


@bp.post("/staff/admin/quick-replies")
@staff_page(admin=True)
def add_quick_reply():
    try:
        quick_replies.add(
            conn(),
            request.form.get("label", ""),
            request.form.get("body", ""),
            ctx().config.max_body_chars,
            now(),
        )
    except (BadRequest, PayloadTooLarge):
        return render_admin(web.t("quick.bad", n=ctx().config.max_body_chars), 400)
    except Conflict:
        return render_admin(web.t("quick.full", n=quick_replies.MAX_COUNT), 409)
    return redirect(f"{url_for('admin.admin')}#quick-h", 303)


@bp.post("/staff/admin/quick-replies/<reply_id>/delete")
@staff_page(admin=True)
def remove_quick_reply(reply_id: str):
    quick_replies.remove(conn(), reply_id)
    return redirect(f"{url_for('admin.admin')}#quick-h", 303)


@bp.post("/staff/admin/contact")
@staff_page(admin=True)
def save_contact():
    try:
        contact.set_contact(conn(), request.form.get("phone", ""), request.form.get("hours", ""))
    except BadRequest:
        return render_admin(web.t("contact.bad"), 400)
    return render_admin(notice=web.t("contact.saved"))

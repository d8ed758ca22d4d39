"""E-mail notification pages: a staff member's opt-in, a patient's address, mailing a link.

The conversation, admin and "created" pages show this area through their include points; the
values those partials need come from the template functions registered here, so the views that
render those pages need no change.
"""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core.errors import BadRequest, Conflict
from services.facility.core.notify import StaleLink
from services.facility.http.context import conn, ctx
from services.facility.pages import common as web
from services.facility.pages import conversation as web_conversation
from services.facility.pages.guards import patient_page, staff_page
from services.facility.pages.views import link_page, patient_urls, render_conversation

bp = Blueprint("notify", __name__)


@bp.app_context_processor
def _values() -> dict:
    return {
        "notify_enabled": ctx().notifier.enabled,
        "notify_conversation": conversation_state,
        "notify_admin": admin_state,
    }


def conversation_state(conv_id: str) -> dict:
    """For _conv_notify.html: is mail on, and has this conversation's patient an address?"""
    notifier = ctx().notifier
    return {"enabled": notifier.enabled, "email_set": notifier.patient_address_set(conn(), conv_id)}


def admin_state() -> dict:
    """For _admin_notify.html: is mail on, and which accounts get it (no addresses)."""
    notifier = ctx().notifier
    return {"enabled": notifier.enabled, "accounts": notifier.subscribed_staff(conn())}


def _settings_page(status: int = 200, error: str | None = None, notice: str | None = None):
    notifier = ctx().notifier
    return web.page(
        "notify_settings.html",
        status,
        enabled=notifier.enabled,
        email=notifier.staff_address(conn(), g.staff.staff_id) or "",
        error=error,
        notice=notice,
    )


@bp.route("/staff/notifications", methods=["GET", "POST"])
@staff_page()
def settings():
    if request.method in ("GET", "HEAD"):
        return _settings_page()
    notifier = ctx().notifier
    off = request.form.get("action") == "off"
    email = None if off else request.form.get("email", "")
    try:
        notifier.set_staff_address(conn(), g.staff.staff_id, email)
    except BadRequest:
        return _settings_page(400, error=web.t("notify.bad_address"))
    return _settings_page(notice=web.t("notify.off_saved" if off else "notify.on_saved"))


@bp.post("/patient/notifications")
@patient_page
def patient_address():
    off = request.form.get("action") == "off"
    email = None if off else request.form.get("email", "")
    try:
        ctx().notifier.set_patient_address(conn(), g.conversation_id, email)
    except BadRequest:
        return web_conversation.render(
            g.conversation_id,
            "patient",
            patient_urls(),
            error=web.t("notify.bad_address"),
            status=400,
        )
    return redirect(f"{url_for('patient.conversation')}#notify-h", 303)


@bp.post("/staff/c/<conv_id>/link-mail")
@staff_page()
def link_mail(conv_id: str):
    ctx().conversations.require_live(conn(), conv_id)
    # From the "created" page with the new link's token; from the conversation without one:
    # the link kept to be sent again.
    token = request.form.get("token") or None
    try:
        ctx().notifier.send_link(conn(), conv_id, token, request.form.get("email", ""))
    except StaleLink:
        return _message(400, web.t("notify.link_stale"), conv_id)
    except BadRequest:
        if token is None:
            return render_conversation(conv_id, status=400, link_error=web.t("notify.bad_address"))
        # The token is the conversation's current one: show its page again, with the error.
        g.notify_error = web.t("notify.bad_address")
        return link_page(conv_id, token, True, 400)
    except Conflict:
        return _message(409, web.t("notify.link_needs_pin"), conv_id)
    return _message(202, web.t("notify.link_queued"), conv_id, web.t("notify.link_queued_title"))


def _message(status: int, text: str, conv_id: str, title: str | None = None):
    return web.page(
        "message.html",
        status,
        title=title or web.t("error.title"),
        text=text,
        link=url_for("staff.conversation", conv_id=conv_id),
        link_text=web.t("created.open"),
    )

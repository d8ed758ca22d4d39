"""Requests patients start themselves: the form on the facility's start page (where the practice
enables it), the page with the link to keep, and the admin's settings."""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core import intake, patients
from services.facility.core.errors import BadRequest, Conflict, TooManyRequests
from services.facility.http.auth import PATIENT_COOKIE, PRE_COOKIE, check_csrf, csrf_for
from services.facility.http.context import client_id, conn, ctx, now, patient_url
from services.facility.pages import common as web
from services.facility.pages import i18n
from services.facility.pages.guards import staff_page
from services.facility.pages.views import qr_svg, render_admin

bp = Blueprint("intake", __name__)


@bp.app_context_processor
def _values() -> dict:
    return {"intake_settings": lambda: intake.settings(conn())}


def _form(status: int = 200, error: str | None = None):
    return web.page(
        "request.html", status, settings=intake.settings(conn()), error=error, form=request.form
    )


@bp.route("/request", methods=["GET", "POST"])
def form():
    g.csrf = csrf_for(web.pre_session())
    if not intake.settings(conn())["enabled"]:
        return web.page(
            "message.html", 404, title=web.t("intake.off_title"), text=web.t("intake.off")
        )
    if request.method in ("GET", "HEAD"):
        return _form()
    check_csrf(request.cookies.get(PRE_COOKIE))
    fields = {k: request.form.get(k, "").strip() for k in ("category", "name", "birth_date", "pin")}
    fields["body"] = request.form.get("body", "")
    try:
        conv_id, token = intake.start(conn(), ctx().conversations, fields, client_id(), now())
    except TooManyRequests as e:
        wait = i18n.format_wait(e.retry_after, g.lang)
        response = _form(429, web.t("intake.too_many", wait=wait))
        response.headers.update(e.headers)
        return response
    except Conflict:
        return _form(409, web.t("intake.off"))
    except BadRequest:
        return _form(400, web.t("intake.bad"))
    seconds = ctx().config.session_seconds
    session = patients.new_session(conn(), conv_id, True, now() + seconds * 1_000_000, now())
    link = patient_url(token)
    response = web.page("request_done.html", 201, link=link, qr_svg=qr_svg(link))
    web.set_cookie(response, PATIENT_COOKIE, session, seconds)
    web.clear_cookie(response, PRE_COOKIE)
    return response


@bp.post("/staff/admin/intake")
@staff_page(admin=True)
def admin_settings():
    categories = [c.strip() for c in request.form.get("categories", "").splitlines() if c.strip()]
    try:
        intake.set_settings(conn(), request.form.get("enabled") == "on", categories)
    except BadRequest:
        return render_admin(web.t("intake.admin_bad"), 400)
    return redirect(f"{url_for('admin.admin')}#intake-h", 303)

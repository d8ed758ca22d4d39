"""Pages for links that reach the patient: the printable letter with its QR code, the
practice's text for the link mail, and the page where a patient who lost the link asks for it.
"""

from flask import Blueprint, g, redirect, request, url_for

from medcell_common.notifications import TemplateError, check_template
from services.facility.core import links
from services.facility.core.errors import BadRequest, Conflict, TooManyRequests
from services.facility.http.auth import PRE_COOKIE, check_csrf, csrf_for
from services.facility.http.context import client_id, conn, ctx, now, patient_url
from services.facility.pages import common as web
from services.facility.pages import i18n
from services.facility.pages.guards import staff_page
from services.facility.pages.views import qr_svg, render_admin

bp = Blueprint("links", __name__)


@bp.app_context_processor
def _values() -> dict:
    return {"link_mail_template": _template_state}


def _template_state() -> dict:
    """For _admin_link_mail.html: is mail on, and the text (as typed, after a refused save)."""
    value = g.get("link_template_value")
    return {
        "enabled": ctx().notifier.enabled,
        "text": value if value is not None else (links.template(conn()) or ""),
    }


@bp.get("/staff/c/<conv_id>/letter")
@staff_page()
def letter(conv_id: str):
    ctx().conversations.require_live(conn(), conv_id)
    token = links.current(conn(), ctx().keyring, ctx().config.facility, conv_id)
    back = url_for("staff.conversation", conv_id=conv_id)
    if token is None:
        return web.page(
            "message.html",
            409,
            title=web.t("links.title"),
            text=web.t("links.not_kept"),
            link=back,
            link_text=web.t("created.open"),
        )
    link = patient_url(token)
    has_pin = bool(
        conn()
        .execute("SELECT pin_hash IS NOT NULL FROM conversations WHERE id = ?", (conv_id,))
        .fetchone()[0]
    )
    return web.page(
        "letter.html",
        link=link,
        qr_svg=qr_svg(link),
        has_pin=has_pin,
        back=back,
        lost_url=ctx().config.url("link-lost"),  # on the facility's own origin, as the link
        notify=ctx().notifier.enabled,
    )


@bp.post("/staff/admin/link-mail-template")
@staff_page(admin=True)
def template():
    text = request.form.get("text", "")
    try:
        if text.strip():
            check_template(text)  # for the rule's words in the reader's language
        saved = links.set_template(conn(), text)
    except TemplateError as e:
        g.link_template_value = text
        reason = web.t(f"links.rule.{e.rule}")
        return render_admin(web.t("links.template_bad", reason=reason), 400)
    return render_admin(notice=web.t("links.template_saved" if saved else "links.template_reset"))


@bp.route("/link-lost", methods=["GET", "POST"])
def lost():
    g.csrf = csrf_for(web.pre_session())
    enabled = ctx().notifier.enabled
    if request.method in ("GET", "HEAD") or not enabled:
        return web.page("link_lost.html", enabled=enabled)
    check_csrf(request.cookies.get(PRE_COOKIE))
    email = request.form.get("email", "")
    try:
        ctx().notifier.request_link(conn(), email, client_id(), now())
    except TooManyRequests as e:
        wait = i18n.format_wait(e.retry_after, g.lang)
        response = web.page(
            "link_lost.html", 429, enabled=True, error=web.t("links.lost_too_many", wait=wait)
        )
        response.headers.update(e.headers)
        return response
    except BadRequest:
        return web.page(
            "link_lost.html", 400, enabled=True, error=web.t("notify.bad_address"), email=email
        )
    except Conflict:
        return web.page("link_lost.html", 409, enabled=False)
    return redirect(url_for("links.lost_done"), 303)


@bp.get("/link-lost/done")
def lost_done():
    return web.page(
        "message.html",
        title=web.t("links.lost_done_title"),
        text=web.t("links.lost_done"),
    )

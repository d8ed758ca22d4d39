"""Pages that more than one blueprint shows: the admin page, a staff conversation, a new link.

The blueprints import these, never one another.
"""

from flask import g, request, url_for
from markupsafe import Markup

from medcell_common.rules import format_duration
from services.facility.core import accounts as auth
from services.facility.core import (
    autoreply,
    contact,
    links,
    opening,
    patients,
    quick_replies,
    settings,
    signin,
    usage,
)
from services.facility.core.notes import MAX_NOTE_CHARS, Notes
from services.facility.http.context import conn, ctx, patient_url
from services.facility.pages import common as web
from services.facility.pages import conversation as web_conversation
from services.facility.pages import receipts as web_receipts

RETENTION_CHOICES = ("1h", "12h", "1d", "2d", "3d", "5d", "7d")


def render_admin(error: str | None = None, status: int = 200, notice: str | None = None, **extra):
    config = ctx().config
    current = settings.retention_seconds(conn(), config.retention)
    choices = list(RETENTION_CHOICES)
    if format_duration(current) not in choices:
        choices.append(format_duration(current))
    return web.page(
        "admin.html",
        status,
        accounts=auth.list_staff(conn()),
        retention=format_duration(current),
        retention_choices=choices,
        receipts=web_receipts.listed(ctx().conversations.receipts.recent(conn(), 100)),
        receipt_key=ctx().conversations.receipts.public_key(),
        error=error,
        notice=notice,
        usage=usage(ctx()),
        quick_replies=quick_replies.list_all(conn()),
        contact=contact.get(conn()),
        max_body=config.max_body_chars,
        second_factor_required=signin.required(conn()),
        **auto_reply_values(),
        **extra,
    )


def auto_reply_values() -> dict:
    """The admin page's automatic reply: the setting, and whether the hours name times."""
    hours = contact.get(conn())["hours"]
    return {
        "auto_reply": autoreply.get(conn()),
        "auto_reply_max": autoreply.MAX_CHARS,
        "hours_known": bool(opening.opening_periods(hours)),
        "auto_reply_saved": request.args.get("auto") == "saved",
    }


def conversation_urls(conv_id: str) -> dict:
    return {
        "message": url_for("staff.message", conv_id=conv_id),
        "delete": url_for("staff.confirm_delete", conv_id=conv_id),
        "file_base": "/staff/files/",
        "poll": f"/api/v1/conversations/{conv_id}/messages",
        "new_link": url_for("staff.new_link", conv_id=conv_id),
        "letter": url_for("links.letter", conv_id=conv_id),
        "link_mail": url_for("notify.link_mail", conv_id=conv_id),
        "self": url_for("staff.conversation", conv_id=conv_id),
        "export": url_for("records.export", conv_id=conv_id),
        "reference": url_for("records.reference", conv_id=conv_id),
        "assign": url_for("staff.assign", conv_id=conv_id),
        "notes": url_for("staff.note", conv_id=conv_id),
        "edit_base": f"{url_for('staff.conversation', conv_id=conv_id)}/m/",
    }


def render_conversation(conv_id: str, **values):
    access = patients.access(conn()).get(conv_id, {})
    kept = links.current(conn(), ctx().keyring, ctx().config.facility, conv_id)
    access["kept"] = kept is not None  # the link can be printed and mailed again
    return web_conversation.render(
        conv_id,
        "staff",
        conversation_urls(conv_id),
        access=access,
        quick_replies=quick_replies.list_all(conn()),
        **team_values(conv_id),
        **values,
    )


def team_values(conv_id: str) -> dict:
    """The team's own layer of a conversation: who it is assigned to, the internal notes."""
    c = conn()
    team = Notes(ctx().conversations)
    return {
        "notes": team.list(c, conv_id),
        "assigned_to": team.assignees(c).get(conv_id),
        # Who a conversation can be assigned to: the active accounts, by display name.
        "colleagues": sorted(
            (
                {"id": i, "username": u, "display_name": n or u}
                for i, u, n in c.execute(
                    "SELECT id, username, display_name FROM staff WHERE active = 1"
                )
            ),
            key=lambda a: a["display_name"].casefold(),
        ),
        "max_note": MAX_NOTE_CHARS,
    }


def qr_svg(link: str) -> Markup:
    """The link as a QR code, inline SVG (black on white, quiet zone, titled for readers)."""
    import segno  # here, not at the top: only link pages need it, and it costs ~1.5 MiB per process

    qr = segno.make(link, error="m").svg_inline(
        scale=6, border=4, title=web.t("created.qr"), dark="#000", light="#fff"
    )
    return Markup(qr)


def link_page(conv_id: str, token: str, has_pin: bool, status: int = 200):
    """The patient link, ready to copy and as a QR code; it can be printed or mailed again later
    from the conversation (links.current)."""
    link = patient_url(token)
    return web.page(
        "created.html",
        status,
        link=link,
        qr_svg=qr_svg(link),
        has_pin=has_pin,
        conv_url=url_for("staff.conversation", conv_id=conv_id),
        letter_url=url_for("links.letter", conv_id=conv_id),
    )


def patient_urls() -> dict:
    return {
        "message": url_for("patient.message"),
        "delete": url_for("patient.confirm_delete"),
        "file_base": "/patient/files/",
        "poll": f"/api/v1/conversations/{g.conversation_id}/messages",
        "leave": url_for("patient.leave"),
        "self": url_for("patient.conversation"),
        "edit_base": url_for("patient.conversation") + "m/",
    }

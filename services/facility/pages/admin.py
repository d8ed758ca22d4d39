"""The admin's pages: staff accounts, the facility's retention, deleting all patient data."""

from flask import Blueprint, g, redirect, request, url_for

from medcell_common.rules import parse_retention
from services.facility.core import accounts as auth
from services.facility.core import passwords, settings, signin
from services.facility.core.errors import BadRequest, Conflict, NotFound
from services.facility.http.context import conn, ctx, deadlines_changed, now
from services.facility.pages import common as web
from services.facility.pages import i18n
from services.facility.pages.guards import staff_page
from services.facility.pages.views import render_admin

bp = Blueprint("admin", __name__)


@bp.get("/staff/admin")
@staff_page(admin=True)
def admin():
    return render_admin()


@bp.post("/staff/admin/accounts")
@staff_page(admin=True)
def add_account():
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "staff")
    password = request.form.get("password", "") or passwords.generate_password()
    # Left empty, the username stands in until a name is set.
    given = request.form.get("display_name", "").strip()
    try:
        name = auth.check_display_name(given) if given else None
    except BadRequest:
        return render_admin(web.t("name.bad"), 400)
    try:
        auth.create_staff(conn(), auth.check_username(username), password, role, now(), name)
    except Conflict:
        return render_admin(web.t("admin.taken", name=username), 409)
    except BadRequest:
        return render_admin(web.t("admin.bad_account"), 400)
    shown = password if not request.form.get("password") else None
    return web.page(
        "account_created.html",
        201,
        username=username,
        role=role,
        password=shown,
        display_name=name or username,
    )


@bp.get("/staff/admin/accounts/<username>/delete")
@staff_page(admin=True)
def confirm_remove_account(username: str):
    return confirm_page(
        "admin.remove_confirm", username, url_for("admin.remove_account", username=username)
    )


def confirm_page(key: str, username: str, action: str, status: int = 200, **fields):
    """The confirm step of an account action (a page of its own: it works without script)."""
    if not any(a["username"] == username for a in auth.list_staff(conn())):
        return render_admin(web.t("error.not_found"), 404)
    return web.page(
        "confirm.html",
        status,
        title=web.t(f"{key}_title"),
        text=web.t(key, name=username),
        action=action,
        button=web.t(f"{key}_button"),
        cancel=url_for("admin.admin"),
        fields=fields,
    )


def confirmed() -> bool:
    return request.form.get("confirm") == "yes"


@bp.post("/staff/admin/accounts/<username>/delete")
@staff_page(admin=True)
def remove_account(username: str):
    if not confirmed():
        return confirm_remove_account(username)
    try:
        auth.remove_staff(conn(), username, g.staff)
    except Conflict:
        return render_admin(web.t("admin.not_self"), 409)
    except NotFound:
        return render_admin(web.t("error.not_found"), 404)
    return redirect(url_for("admin.admin"), 303)


@bp.post("/staff/admin/retention")
@staff_page(admin=True)
def retention():
    text = request.form.get("retention", "")
    try:
        seconds = parse_retention(text)
    except ValueError:
        return render_admin(web.t("admin.bad_retention"), 400)
    current = settings.retention_seconds(conn(), ctx().config.retention)
    if seconds < current and not confirmed():
        # Shorter deletes at once what is older than the new retention: say how much first.
        (gone,) = (
            conn()
            .execute(
                "SELECT count(*) FROM conversations WHERE last_activity + ? <= ?",
                (seconds * 1_000_000, now()),
            )
            .fetchone()
        )
        return web.page(
            "confirm.html",
            title=web.t("admin.retention_confirm_title"),
            text=web.t(
                "admin.retention_confirm", n=gone, duration=i18n.format_duration(seconds, g.lang)
            ),
            action=url_for("admin.retention"),
            button=web.t("admin.retention_confirm_button"),
            cancel=url_for("admin.admin"),
            fields={"retention": text},
        )
    try:
        settings.set_retention(conn(), text)
    except BadRequest:
        return render_admin(web.t("admin.bad_retention"), 400)
    deadlines_changed()
    return render_admin(notice=web.t("admin.retention_saved"))


@bp.post("/staff/admin/second-factor")
@staff_page(admin=True)
def second_factor():
    required = request.form.get("required") == "on"
    signin.set_required(conn(), required)
    key = "admin.second_factor_on" if required else "admin.second_factor_off"
    return render_admin(notice=web.t(key))


def counts() -> dict:
    c = conn()
    return {
        table: c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("conversations", "messages", "attachments")
    }


@bp.route("/staff/admin/wipe", methods=["GET", "POST"])
@staff_page(admin=True)
def wipe():
    slug = ctx().config.facility
    if request.method in ("GET", "HEAD"):
        return web.page("wipe.html", counts=counts(), slug=slug)
    if request.form.get("confirm", "").strip() != slug:
        return web.page(
            "wipe.html", 400, counts=counts(), slug=slug, error=web.t("wipe.mismatch", slug=slug)
        )
    deleted = ctx().conversations.delete_all(conn())["deleted"]
    return web.page(
        "message.html",
        title=web.t("wipe.done_title"),
        text=web.t("wipe.done", n=deleted),
        link=url_for("staff.home"),
        link_text=web.t("nav.conversations"),
    )

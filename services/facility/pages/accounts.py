"""Account actions: the admin deactivates, reactivates, resets another account's password and
renames accounts; everyone sets their own display name."""

from flask import Blueprint, g, request, url_for

from services.facility.core import accounts, signin
from services.facility.core.errors import BadRequest, Conflict, FacilityError, NotFound
from services.facility.http.context import conn
from services.facility.pages import common as web
from services.facility.pages.guards import staff_page
from services.facility.pages.views import render_admin

bp = Blueprint("accounts", __name__)


def _refused(e: FacilityError):
    if isinstance(e, Conflict):
        return render_admin(web.t("admin.not_self_action"), 409)
    return render_admin(web.t("error.not_found"), 404)


@bp.post("/staff/admin/accounts/<username>/active")
@staff_page(admin=True)
def toggle(username: str):
    active = not any(a["active"] for a in accounts.list_staff(conn()) if a["username"] == username)
    try:
        accounts.set_active(conn(), username, active, g.staff)
    except (Conflict, NotFound) as e:
        return _refused(e)
    key = "admin.reactivated" if active else "admin.deactivated"
    return render_admin(notice=web.t(key, name=username))


@bp.get("/staff/admin/accounts/<username>/password")
@staff_page(admin=True)
def confirm_reset(username: str):
    if not any(a["username"] == username for a in accounts.list_staff(conn())):
        return render_admin(web.t("error.not_found"), 404)
    return web.page(
        "confirm.html",
        title=web.t("admin.reset_confirm_title"),
        text=web.t("admin.reset_confirm", name=username),
        action=url_for("accounts.reset_password", username=username),
        button=web.t("admin.reset_confirm_button"),
        cancel=url_for("admin.admin"),
        fields={},
        checkbox={"name": "factors", "label": web.t("admin.reset_factors")},
    )


@bp.post("/staff/admin/accounts/<username>/password")
@staff_page(admin=True)
def reset_password(username: str):
    if request.form.get("confirm") != "yes":
        return confirm_reset(username)
    try:
        password = accounts.reset_password(conn(), username, g.staff)
    except (Conflict, NotFound) as e:
        return _refused(e)
    if request.form.get("factors") == "on":
        (staff_id,) = (
            conn().execute("SELECT id FROM staff WHERE username = ?", (username,)).fetchone()
        )
        signin.remove_factors(conn(), staff_id)
    return web.page("password_reset.html", username=username, password=password)


@bp.post("/staff/admin/accounts/<username>/name")
@staff_page(admin=True)
def rename(username: str):
    try:
        name = accounts.set_display_name(conn(), username, request.form.get("name", ""), g.staff)
    except BadRequest:
        return render_admin(web.t("name.bad"), 400)
    except NotFound as e:
        return _refused(e)
    return render_admin(notice=web.t("name.saved_for", name=username, display=name))


@bp.post("/staff/name")
@staff_page()
def own_name():
    try:
        name = accounts.set_display_name(
            conn(), g.staff.username, request.form.get("name", ""), g.staff
        )
    except BadRequest:
        return web.page(
            "password.html",
            400,
            name_error=web.t("name.bad"),
            name_value=request.form.get("name", ""),
            own_name=g.staff.username,
        )
    return web.page("password.html", name_value=name, name_notice=web.t("name.saved"))

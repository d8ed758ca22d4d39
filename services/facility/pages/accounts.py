"""The admin's account actions: deactivate, reactivate, reset another account's password."""

from flask import Blueprint, g

from services.facility.core import accounts
from services.facility.core.errors import Conflict, FacilityError, NotFound
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


@bp.post("/staff/admin/accounts/<username>/password")
@staff_page(admin=True)
def reset_password(username: str):
    try:
        password = accounts.reset_password(conn(), username, g.staff)
    except (Conflict, NotFound) as e:
        return _refused(e)
    return web.page("password_reset.html", username=username, password=password)

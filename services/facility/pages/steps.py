"""What the sign-in pages share: where a session that is still signing in goes next, its
lookup from the cookie, and the JSON errors of the passkey ceremonies (the API's shape)."""

from flask import jsonify, redirect, request, url_for

from services.facility.core import signin
from services.facility.core.errors import FacilityError
from services.facility.core.signin import Stage
from services.facility.http.auth import STAFF_COOKIE
from services.facility.http.context import conn, now

STEP_PAGES = {
    Stage.FULL: "staff.home",
    Stage.SECOND_FACTOR: "signin.verify",
    Stage.PASSWORD: "signin.new_password",
    Stage.SETUP: "security.page",
}


def next_page(stage: Stage):
    return redirect(url_for(STEP_PAGES[stage]), 303)


def pending() -> signin.Pending | None:
    """The session in the staff cookie, whatever its stage."""
    return signin.pending(conn(), request.cookies.get(STAFF_COOKIE), now())


def json_error(e: FacilityError):
    response = jsonify(error={"code": e.code, "message": str(e)})
    response.status_code = e.status
    response.headers.update(e.headers)
    return response

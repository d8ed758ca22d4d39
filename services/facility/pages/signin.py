"""The steps of a staff sign-in after the password, sign-in with a passkey, "forgot password".

A session still signing in (core/signin.py's stages) sits in the staff cookie like any other,
but opens nothing except the page of its next step. The passkey ceremonies are JSON (the page's
script calls them with the page's CSRF token in X-CSRF-Token); their errors are JSON too, in the
API's shape.
"""

from flask import Blueprint, g, jsonify, redirect, request, url_for

from services.facility.core import accounts as auth
from services.facility.core import passkeys, signin, throttle
from services.facility.core.errors import (
    AccountDisabled,
    BadRequest,
    FacilityError,
    TooManyRequests,
)
from services.facility.core.signin import Stage
from services.facility.core.totp import Totp
from services.facility.http.auth import PRE_COOKIE, STAFF_COOKIE, check_csrf, csrf_for
from services.facility.http.context import client_id, conn, ctx, now
from services.facility.pages import common as web
from services.facility.pages import i18n
from services.facility.pages.steps import STEP_PAGES, json_error, next_page, pending

bp = Blueprint("signin", __name__)


def _step(stage: Stage):
    """The pending session at `stage` with its CSRF token on g, or where to go instead."""
    session = pending()
    if session is None:
        return None, redirect(url_for("staff.login"), 303)
    if session.stage != stage:
        return None, next_page(session.stage)
    token = request.cookies.get(STAFF_COOKIE)
    g.csrf = csrf_for(token)
    if request.method == "POST":
        check_csrf(token)
    return session, None


# -- the second factor ----------------------------------------------------------------------


def verify_page(session: signin.Pending, status: int = 200, error: str | None = None):
    found = signin.factors(conn(), session.staff_id)
    return web.page(
        "login_verify.html",
        status,
        error=error,
        has_passkey=found["passkeys"] > 0,
        has_totp=found["totp"],
        username=session.username,
    )


@bp.route("/login/verify", methods=["GET", "POST"])
def verify():
    session, elsewhere = _step(Stage.SECOND_FACTOR)
    if elsewhere:
        return elsewhere
    if request.method in ("GET", "HEAD"):
        return verify_page(session)
    c, t, client = conn(), now(), client_id()
    try:
        throttle.check_second_factor(c, session.staff_id, client, t)
    except TooManyRequests as e:
        wait = i18n.format_wait(e.retry_after, g.lang)
        response = verify_page(session, 429, web.t("login.throttled", wait=wait))
        response.headers.update(e.headers)
        return response
    if not Totp(ctx().keyring).verify(c, session.staff_id, request.form.get("code", ""), t):
        throttle.second_factor_failed(c, session.staff_id, client, t)
        return verify_page(session, 401, web.t("signin.code_wrong"))
    stage = signin.after_factor(c, session.staff_id)
    signin.advance(c, request.cookies.get(STAFF_COOKIE), stage)
    return next_page(stage)


# -- a password an admin reset ---------------------------------------------------------------


@bp.route("/login/password", methods=["GET", "POST"])
def new_password():
    session, elsewhere = _step(Stage.PASSWORD)
    if elsewhere:
        return elsewhere
    if request.method in ("GET", "HEAD"):
        return web.page("login_password.html")
    new, again = request.form.get("new", ""), request.form.get("again", "")
    try:
        signin.check_same(new, again)
    except BadRequest:
        return web.page("login_password.html", 400, error=web.t("signin.passwords_differ"))
    try:
        stage = signin.replace_password(
            conn(), request.cookies.get(STAFF_COOKIE), session.staff_id, new
        )
    except BadRequest:
        return web.page("login_password.html", 400, error=web.t("password.rules"))
    return next_page(stage)


@bp.post("/login/cancel")
def cancel():
    """End a sign-in that is still under way (its session opens nothing else, not even logout)."""
    session = pending()
    response = redirect(url_for("staff.login"), 303)
    if session is not None:
        token = request.cookies.get(STAFF_COOKIE)
        check_csrf(token)
        auth.logout(conn(), token)
    web.clear_cookie(response, STAFF_COOKIE)
    return response


# -- forgot password --------------------------------------------------------------------------


@bp.get("/login/forgot")
def forgot():
    return web.page("forgot.html")


# -- sign-in with a passkey -------------------------------------------------------------------


def _ceremony_csrf() -> signin.Pending | None:
    """Check the CSRF token of the login page (its pre-session) or of a pending session."""
    session = pending()
    if session is not None and session.stage == Stage.SECOND_FACTOR:
        check_csrf(request.cookies.get(STAFF_COOKIE))
        return session
    check_csrf(request.cookies.get(PRE_COOKIE))
    return None


@bp.post("/login/passkey/options")
def passkey_options():
    try:
        session = _ceremony_csrf()
        options = passkeys.login_options(
            conn(),
            ctx().config.public_url,
            now(),
            session.staff_id if session else None,
        )
    except FacilityError as e:
        return json_error(e)
    return jsonify(options)


@bp.post("/login/passkey")
def passkey_login():
    c, t, client = conn(), now(), client_id()
    try:
        session = _ceremony_csrf()
        throttle.check(c, "token", client, t)
        try:
            staff_id, owner = passkeys.authenticate(
                c, request.get_json(silent=True), ctx().config.public_url, t
            )
        except FacilityError:
            throttle.record_failure(c, "token", client, t)
            raise
        if session is not None and owner != session.staff_id:
            raise BadRequest("this passkey request belongs to another sign-in")
        active = c.execute("SELECT active FROM staff WHERE id = ?", (staff_id,)).fetchone()
        if not active or not active[0]:
            raise AccountDisabled("this account has been deactivated by an administrator")
    except FacilityError as e:
        return json_error(e)
    stage = signin.after_factor(c, staff_id)
    response = jsonify(next=url_for(STEP_PAGES[stage]))
    if session is not None:
        signin.advance(c, request.cookies.get(STAFF_COOKIE), stage)
        return response
    # A passkey with user verification is both factors at once: a new session.
    token = auth.open_session(c, staff_id, stage, t, ctx().config.session_seconds)
    web.set_cookie(response, STAFF_COOKIE, token, ctx().config.session_seconds)
    web.clear_cookie(response, PRE_COOKIE)
    return response

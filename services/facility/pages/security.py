"""One's own sign-in: passkeys (add, rename, remove) and an authenticator app (TOTP) with its
recovery codes. Also reached by a session that must set up a second factor first (Stage.SETUP).
"""

import functools

from flask import Blueprint, g, jsonify, redirect, request, url_for
from markupsafe import Markup

from services.facility.core import accounts as auth
from services.facility.core import passkeys, signin
from services.facility.core.errors import BadRequest, Conflict, FacilityError, NotFound
from services.facility.core.signin import Stage
from services.facility.core.totp import Totp, provisioning_uri
from services.facility.http.auth import STAFF_COOKIE, CsrfError, check_csrf, csrf_for
from services.facility.http.context import conn, ctx, now
from services.facility.pages import common as web
from services.facility.pages.steps import json_error, next_page, pending

bp = Blueprint("security", __name__)


def own_session(view):
    """A signed-in staff member, or one who must set up a second factor before anything else."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session = pending()
        if session is None:
            return redirect(url_for("staff.login"), 303)
        if session.stage not in (Stage.FULL, Stage.SETUP):
            return next_page(session.stage)
        token = request.cookies.get(STAFF_COOKIE)
        g.session, g.csrf = session, csrf_for(token)
        if session.stage == Stage.FULL:
            g.staff = auth.resolve(conn(), token, now())  # the page's navigation
        if request.method == "POST":
            try:
                check_csrf(token)
            except CsrfError as e:
                if request.is_json:  # the page's script: the API's error shape
                    return json_error(e)
                raise
        return view(*args, **kwargs)

    return wrapper


def _setup_done() -> None:
    """A session that owed a second factor is a full one once it has one."""
    session = g.session
    if session.stage == Stage.SETUP and signin.has_factor(conn(), session.staff_id):
        signin.advance(conn(), request.cookies.get(STAFF_COOKIE), Stage.FULL)


def render(status: int = 200, **values):
    session = g.session
    c = conn()
    totp = Totp(ctx().keyring)
    secret = totp.pending_secret(c, session.staff_id)
    setup = None
    if secret is not None:
        import segno  # only this page needs it (see views.link_page)

        uri = provisioning_uri(secret, session.username, ctx().config.facility_name)
        qr = segno.make(uri, error="m").svg_inline(
            scale=4, border=4, title=web.t("security.totp_qr"), dark="#000", light="#fff"
        )
        setup = {"secret": secret, "qr": Markup(qr)}
    return web.page(
        "security.html",
        status,
        setup_owed=session.stage == Stage.SETUP,
        passkeys=passkeys.list_for(c, session.staff_id),
        factors=signin.factors(c, session.staff_id),
        recovery_left=totp.recovery_left(c, session.staff_id),
        totp_setup=setup,
        **values,
    )


@bp.get("/staff/security")
@own_session
def page():
    return render()


# -- passkeys -------------------------------------------------------------------------------


@bp.post("/staff/security/passkeys/options")
@own_session
def passkey_options():
    session = g.session
    c = conn()
    name = auth.display_names(c).get(session.staff_id, session.username)
    try:
        options = passkeys.registration_options(
            c,
            session.staff_id,
            session.username,
            name,
            ctx().config.public_url,
            ctx().config.facility_name,
            now(),
        )
    except FacilityError as e:
        return json_error(e)
    return jsonify(options)


@bp.post("/staff/security/passkeys")
@own_session
def passkey_add():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(BadRequest("the request body must be a JSON object"))
    try:
        added = passkeys.register(
            conn(),
            g.session.staff_id,
            body.get("credential"),
            body.get("name"),
            ctx().config.public_url,
            now(),
        )
    except FacilityError as e:
        return json_error(e)
    _setup_done()
    return jsonify(id=added["id"], name=added["name"], next=url_for("security.page")), 201


@bp.post("/staff/security/passkeys/<passkey_id>/name")
@own_session
def passkey_rename(passkey_id: str):
    try:
        name = passkeys.rename(conn(), g.session.staff_id, passkey_id, request.form.get("name"))
    except BadRequest:
        return render(400, error=web.t("security.bad_name"))
    return render(notice=web.t("security.renamed", name=name))


@bp.get("/staff/security/passkeys/<passkey_id>/delete")
@own_session
def passkey_confirm_remove(passkey_id: str):
    found = [p for p in passkeys.list_for(conn(), g.session.staff_id) if p["id"] == passkey_id]
    if not found:
        raise NotFound("no such passkey")
    return web.page(
        "confirm.html",
        title=web.t("security.remove_title"),
        text=web.t("security.remove_text", name=found[0]["name"]),
        action=url_for("security.passkey_remove", passkey_id=passkey_id),
        button=web.t("security.remove"),
        cancel=url_for("security.page"),
    )


@bp.post("/staff/security/passkeys/<passkey_id>/delete")
@own_session
def passkey_remove(passkey_id: str):
    passkeys.remove(conn(), g.session.staff_id, passkey_id)
    return render(notice=web.t("security.removed"))


# -- an authenticator app (TOTP) --------------------------------------------------------------


@bp.post("/staff/security/totp")
@own_session
def totp_begin():
    try:
        Totp(ctx().keyring).begin(conn(), g.session.staff_id)
    except Conflict:
        return render(409, error=web.t("security.totp_exists"))
    return render()


@bp.post("/staff/security/totp/confirm")
@own_session
def totp_confirm():
    try:
        codes = Totp(ctx().keyring).confirm(
            conn(), g.session.staff_id, request.form.get("code", ""), now()
        )
    except NotFound:
        return render(409, error=web.t("security.totp_not_started"))
    except BadRequest:
        return render(400, totp_error=web.t("signin.code_wrong"))
    _setup_done()
    if g.session.stage == Stage.SETUP:
        g.staff = auth.resolve(conn(), request.cookies.get(STAFF_COOKIE), now())
    return web.page("recovery_codes.html", codes=codes)


@bp.get("/staff/security/totp/delete")
@own_session
def totp_confirm_remove():
    return web.page(
        "confirm.html",
        title=web.t("security.totp_remove_title"),
        text=web.t("security.totp_remove_text"),
        action=url_for("security.totp_remove"),
        button=web.t("security.remove"),
        cancel=url_for("security.page"),
    )


@bp.post("/staff/security/totp/delete")
@own_session
def totp_remove():
    Totp(ctx().keyring).remove(conn(), g.session.staff_id)
    return render(notice=web.t("security.totp_removed"))

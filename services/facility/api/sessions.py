"""The API's sessions: the health check, staff login and logout, who a token belongs to, a
patient's session from a link, and one's own password."""

from flask import Blueprint, g, jsonify, request

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import accounts as auth
from services.facility.core import patients, signin, throttle
from services.facility.core.config import Config
from services.facility.core.errors import (
    FacilityError,
    NotFound,
    PinRequired,
    SecondFactorRequired,
    SignInStepRequired,
)
from services.facility.core.signin import Stage
from services.facility.core.totp import Totp
from services.facility.http.auth import STAFF_COOKIE, bearer_token, require
from services.facility.http.context import (
    client_id,
    conn,
    ctx,
    now,
)

bp = Blueprint("sessions_api", __name__)


@bp.get("/healthz")
def healthz():
    conn().execute("SELECT 1").fetchone()
    return jsonify(status="ok")


@bp.post("/api/v1/login")
def login():
    body = json_body()
    c, t = conn(), now()
    token = auth.login(
        c, body.get("username"), body.get("password"), client_id(), t, ctx().config.session_seconds
    )
    try:
        stage = signin.pending(c, token, t).stage
        if stage == Stage.SECOND_FACTOR:
            stage = _second_factor(c, token, body.get("code"), t)
        if stage == Stage.PASSWORD:
            raise SignInStepRequired(
                "password_change_required",
                "an admin reset this password: choose a new one on the sign-in page",
            )
        if stage == Stage.SETUP:
            raise SignInStepRequired(
                "second_factor_setup_required",
                "this facility requires a second factor: set one up on the sign-in page",
            )
    except FacilityError:
        auth.logout(c, token)  # an API client cannot go on with a half-open session
        raise
    return jsonify(token=token)


def _second_factor(c, token: str, code: object, t: int) -> Stage:
    """The TOTP or recovery code an API client sends with its password (as "code")."""
    session = signin.pending(c, token, t)
    client = client_id()
    throttle.check_second_factor(c, session.staff_id, client, t)
    if code is None:
        raise SecondFactorRequired("this account has a second factor: send its code as 'code'")
    if not Totp(ctx().keyring).verify(c, session.staff_id, code, t):
        throttle.second_factor_failed(c, session.staff_id, client, t)
        raise SecondFactorRequired("the code is wrong or has been used")
    stage = signin.after_factor(c, session.staff_id)
    signin.advance(c, token, stage)
    return stage


@bp.post("/api/v1/logout")
@require()
def logout():
    # The session that called: its bearer token, or the page's cookie session (with its CSRF).
    auth.logout(conn(), bearer_token() or request.cookies.get(STAFF_COOKIE, ""))
    return "", 204


@bp.get("/api/v1/me")
@require(patient=True)
def me():
    who = g.principal
    if who.kind == "patient":
        return jsonify(kind="patient", conversation_id=who.conversation_id)
    name = auth.display_names(conn()).get(who.staff_id, who.username)
    return jsonify(kind="staff", username=who.username, role=who.role, display_name=name)


@bp.post("/api/v1/patient-sessions")
def open_patient_session():
    """Trade a patient token (plus its PIN, if the conversation has one) for a session token."""
    body = json_body()
    c, t, client, seconds = conn(), now(), client_id(), ctx().config.session_seconds
    throttle.check(c, "token", client, t)
    try:
        token = patients.open_link(c, body.get("token"), t, seconds)
    except NotFound:
        throttle.record_failure(c, "token", client, t)
        raise
    if patients.session(c, token, t).pin_ok:
        return jsonify(token=token), 201
    # A pending session is of no use to an API client: it ends whatever the outcome.
    pending = token
    try:
        if body.get("pin") is None:
            raise PinRequired("this conversation has a PIN: send it as 'pin'")
        token = patients.enter_pin(c, pending, body.get("pin"), client, t, seconds)
    finally:
        patients.end_session(c, pending)
    return jsonify(token=token), 201


@bp.post("/api/v1/password")
@require()
def change_password():
    body = json_body()
    auth.change_password(
        conn(), g.principal, body.get("current_password"), body.get("new_password")
    )
    return "", 204


# -- the OpenAPI document -----------------------------------------------------------------


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/healthz": {
            "get": doc.op(
                "Health check", {"200": doc.json(doc.obj(["status"], status=doc.STR))}, auth=False
            )
        },
        "/api/v1/login": {
            "post": doc.op(
                "Staff login; returns a bearer token",
                {
                    "200": doc.json(doc.obj(["token"], token=doc.STR)),
                    "400": doc.error("Malformed request"),
                    "401": doc.error(
                        "Wrong username or password; or the account has a second factor and "
                        "'code' is missing or wrong (second_factor_required)"
                    ),
                    "403": doc.error(
                        "Right password, but the account is deactivated, or must first change "
                        "its password (password_change_required) or set up a second factor "
                        "(second_factor_setup_required) on the sign-in page"
                    ),
                    "429": doc.error(
                        "Too many failures for this account from this client (5 in 15 min), "
                        "or from this client over all accounts (30); Retry-After says how long"
                    ),
                },
                auth=False,
                body=doc.body(
                    doc.input_object(
                        ["username", "password"],
                        username=doc.STR,
                        password=doc.STR,
                        code={
                            "type": "string",
                            "description": "the account's TOTP code or a recovery code, if it "
                            "has a second factor",
                        },
                    )
                ),
            )
        },
        "/api/v1/logout": {"post": doc.op("End this staff session", {"204": doc.NO_CONTENT})},
        "/api/v1/me": {
            "get": doc.op(
                "Who the token belongs to",
                {
                    "200": doc.json(
                        doc.obj(
                            ["kind"],
                            kind={"type": "string", "enum": ["staff", "patient"]},
                            username=doc.STR,
                            display_name=doc.STR,
                            role={"type": "string", "enum": ["admin", "staff"]},
                            conversation_id=doc.STR,
                        )
                    )
                },
            )
        },
        "/api/v1/patient-sessions": {
            "post": doc.op(
                "Trade a patient token (and its PIN, if set) for a patient session token",
                {
                    "201": doc.json(doc.obj(["token"], token=doc.STR), "Created"),
                    "400": doc.error("Malformed request"),
                    "401": doc.error("Wrong PIN"),
                    "403": doc.error("PIN missing (pin_required) or link locked (link_locked)"),
                    "404": doc.error("Unknown patient token"),
                    "429": doc.error("Too many failures"),
                },
                auth=False,
                body=doc.body(
                    doc.input_object(
                        ["token"],
                        token={
                            "type": "string",
                            "minLength": 20,
                            "maxLength": 128,
                            "description": "the secret of the patient link",
                        },
                        pin={"type": "string", "description": "the conversation's PIN, if set"},
                    )
                ),
            )
        },
        "/api/v1/password": {
            "post": doc.op(
                "Change your own password; ends your other sessions",
                {
                    "204": doc.NO_CONTENT,
                    "400": doc.error("Malformed request, or the new password too short or long"),
                    "401": doc.error(
                        "Missing, invalid or expired token, or the current password is wrong"
                    ),
                },
                body=doc.body(
                    doc.input_object(
                        ["current_password", "new_password"],
                        current_password=doc.STR,
                        new_password=patterns.PASSWORD,
                    )
                ),
            )
        },
    }

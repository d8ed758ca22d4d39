"""The facility's JSON API (CONTRACT.md) plus what an admin needs."""

from flask import Blueprint, g, jsonify, request

from services.facility.api.openapi import spec
from services.facility.api.validation import form, json_body, query
from services.facility.core import accounts as auth
from services.facility.core import passwords, patients, reading, settings, throttle
from services.facility.core.conversations import ID_RE
from services.facility.core.errors import BadRequest, NotFound, PinRequired
from services.facility.http.auth import STAFF_COOKIE, bearer_token, require
from services.facility.http.context import (
    client_id,
    conn,
    ctx,
    deadlines_changed,
    iso,
    now,
    patient_url,
)
from services.facility.http.downloads import attachment_response
from services.facility.http.records import records as filing

bp = Blueprint("api", __name__)


# -- public -------------------------------------------------------------------------------


@bp.get("/healthz")
def healthz():
    conn().execute("SELECT 1").fetchone()
    return jsonify(status="ok")


@bp.get("/api/v1/openapi.json")
def openapi():
    return jsonify(spec(ctx().config))


@bp.post("/api/v1/login")
def login():
    body = json_body()
    token = auth.login(
        conn(),
        body.get("username"),
        body.get("password"),
        client_id(),
        now(),
        ctx().config.session_seconds,
    )
    return jsonify(token=token)


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
    return jsonify(kind="staff", username=who.username, role=who.role)


# -- conversations ------------------------------------------------------------------------


def conversation_json(summary: dict) -> dict:
    return {
        "id": summary["id"],
        "title": summary["title"],
        "last_activity": iso(summary["last_activity"]),
        "expires_at": iso(summary["expires_at"]),
    }


@bp.post("/api/v1/conversations")
@require()
def create_conversation():
    body = json_body()
    pin_hash = patients.hash_pin(body.get("pin"))
    conv_id, token = ctx().conversations.create(
        conn(), body.get("title"), pin_hash, body.get("reference")
    )
    return jsonify(id=conv_id, patient_token=token, patient_url=patient_url(token)), 201


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


@bp.get("/api/v1/conversations")
@require()
def list_conversations():
    items = ctx().conversations.summaries(conn())
    return jsonify(conversations=[conversation_json(c) for c in items])


@bp.delete("/api/v1/conversations")
@require(admin=True)
def delete_all_conversations():
    if query("confirm") != ctx().config.facility:
        raise BadRequest("to delete all patient data, pass ?confirm=<facility slug>")
    return jsonify(ctx().conversations.delete_all(conn()))


@bp.get("/api/v1/conversations/<conv_id>")
@require(patient=True)
def get_conversation(conv_id: str):
    if not ID_RE.match(conv_id):
        raise NotFound("no such conversation")
    summary = conversation_json(ctx().conversations.get(conn(), conv_id))
    if g.principal.kind == "patient":
        # The title is the staff's label for the conversation (it may hold internal notes);
        # the patient's own page does not show it either.
        del summary["title"]
    return jsonify(summary)


@bp.delete("/api/v1/conversations/<conv_id>")
@require(patient=True)
def delete_conversation(conv_id: str):
    receipt = ID_RE.match(conv_id) and ctx().conversations.delete(
        conn(), conv_id, reason=g.principal.kind
    )
    if not receipt:
        raise NotFound("no such conversation")
    return jsonify(receipt=receipt)


# -- messages and attachments -------------------------------------------------------------


@bp.post("/api/v1/conversations/<conv_id>/messages")
@require(patient=True)
def post_message(conv_id: str):
    body = json_body()
    msg = ctx().conversations.add_message(conn(), conv_id, g.principal.kind, body.get("body"))
    return jsonify(id=msg["id"], author=msg["author"], created_at=iso(msg["created_at"])), 201


@bp.get("/api/v1/conversations/<conv_id>/messages")
@require(patient=True)
def list_messages(conv_id: str):
    after = query("after")
    items = ctx().conversations.messages(conn(), conv_id, after)
    polled = request.headers.get("X-Medcell-Poll") == "1"
    if g.principal.kind == "staff" and after is None and not polled:
        filing().opened(conn(), conv_id, g.principal.username)  # live polls are not opens
    reading.mark_read(conn(), conv_id, reading.reader_of(g.principal), [m["id"] for m in items])
    reading.annotate(conn(), conv_id, items)
    for item in items:
        item["created_at"] = iso(item["created_at"])
    up_to = reading.read_up_to(conn(), conv_id, g.principal.kind)
    return jsonify(messages=items, read_up_to=up_to)


@bp.post("/api/v1/conversations/<conv_id>/attachments")
@require(patient=True)
def post_attachment(conv_id: str):
    conversations = ctx().conversations
    conversations.require_live(conn(), conv_id)
    if request.mimetype != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data in the field 'file'")
    fields = form()
    upload = request.files["file"]
    result = conversations.add_attachment(
        conn(),
        conv_id,
        g.principal.kind,
        upload.filename or "",
        upload.mimetype,
        upload.stream,
        fields.get("body", ""),
    )
    return jsonify(id=result["id"], filename=result["filename"], size=result["size"]), 201


@bp.get("/api/v1/attachments/<att_id>")
@require(patient=True)
def get_attachment(att_id: str):
    return attachment_response(att_id, g.principal)


# -- administration -----------------------------------------------------------------------


@bp.get("/api/v1/settings")
@require()
def get_settings():
    config = ctx().config
    return jsonify(
        settings.describe(conn(), config.facility, config.facility_name, config.retention)
    )


@bp.put("/api/v1/settings")
@require(admin=True)
def put_settings():
    settings.set_retention(conn(), json_body()["retention"])
    deadlines_changed()
    return get_settings()


@bp.get("/api/v1/staff")
@require(admin=True)
def list_staff():
    return jsonify(
        staff=[{**s, "created_at": iso(s["created_at"])} for s in auth.list_staff(conn())]
    )


@bp.post("/api/v1/staff")
@require(admin=True)
def create_staff():
    body = json_body()
    generated = "password" not in body
    password = passwords.generate_password() if generated else body["password"]
    username, role = body.get("username"), body.get("role", "staff")
    auth.create_staff(conn(), auth.check_username(username), password, role, now())
    result = {"username": username, "role": role}
    if generated:
        result["password"] = password
    return jsonify(result), 201


@bp.delete("/api/v1/staff/<username>")
@require(admin=True)
def delete_staff(username: str):
    auth.remove_staff(conn(), username, g.principal)
    return "", 204


@bp.post("/api/v1/password")
@require()
def change_password():
    body = json_body()
    auth.change_password(
        conn(), g.principal, body.get("current_password"), body.get("new_password")
    )
    return "", 204

"""The staff's pages: login, the conversation list, one conversation, patient links, password."""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core import accounts as auth
from services.facility.core import intake, links, patients, quick_replies, references, signin
from services.facility.core.errors import (
    AccountDisabled,
    BadRequest,
    ConversationFull,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooLong,
    TooManyRequests,
    Unauthorized,
)
from services.facility.core.notes import MAX_NOTE_CHARS, Notes
from services.facility.http.auth import (
    PRE_COOKIE,
    STAFF_COOKIE,
    check_csrf,
    csrf_for,
    staff_from_cookie,
)
from services.facility.http.context import client_id, conn, ctx, now
from services.facility.http.downloads import attachment_response
from services.facility.http.records import records
from services.facility.pages import common as web
from services.facility.pages import conversation as web_conversation
from services.facility.pages import i18n, listing
from services.facility.pages import receipts as web_receipts
from services.facility.pages.guards import DEVICE_COOKIE, staff_page
from services.facility.pages.record_views import form_reference, home_values
from services.facility.pages.steps import next_page, pending
from services.facility.pages.views import conversation_urls, link_page, render_conversation

bp = Blueprint("staff", __name__)


@bp.get("/")
def root():
    # A patient's device that stays signed in goes to its conversation, not to the staff login.
    if request.cookies.get(DEVICE_COOKIE):
        return redirect(url_for("patient.conversation"), 303)
    # Where the practice takes patients' requests, its start page is their form; staff signed in,
    # or part way through signing in, go on to their pages.
    signed_in = staff_from_cookie()[0] is not None or pending() is not None
    if not signed_in and intake.settings(conn())["enabled"]:
        return redirect(url_for("intake.form"), 303)
    return redirect(url_for("staff.home"), 303)


@bp.route("/login", methods=["GET", "POST"])
def login():
    signing_in = pending()
    if signing_in is not None:
        return next_page(signing_in.stage)
    pre = web.pre_session()
    g.csrf = csrf_for(pre)
    if request.method in ("GET", "HEAD"):
        return web.page("login.html")
    check_csrf(request.cookies.get(PRE_COOKIE))
    username = request.form.get("username", "")
    try:
        token = auth.login(
            conn(),
            username,
            request.form.get("password", ""),
            client_id(),
            now(),
            ctx().config.session_seconds,
        )
    except (Unauthorized, BadRequest):
        return web.page("login.html", 401, error=web.t("login.wrong"), username=username)
    except AccountDisabled:
        return web.page("login.html", 403, error=web.t("login.disabled"), username=username)
    except TooManyRequests as e:
        wait = i18n.format_wait(e.retry_after, g.lang)
        response = web.page(
            "login.html", 429, error=web.t("login.throttled", wait=wait), username=username
        )
        response.headers.update(e.headers)
        return response
    # The password may open everything, or only the next step of the sign-in (core/signin.py).
    response = next_page(signin.pending(conn(), token, now()).stage)
    web.set_cookie(response, STAFF_COOKIE, token, ctx().config.session_seconds)
    web.clear_cookie(response, PRE_COOKIE)
    return response


@bp.post("/logout")
@staff_page()
def logout():
    auth.logout(conn(), g.staff_token)
    response = redirect(url_for("staff.login"), 303)
    web.clear_cookie(response, STAFF_COOKIE)
    return response


def render_home():
    items = ctx().conversations.summaries(conn())
    return web.page(
        "home.html",
        **listing.view(items, g.staff, request.args),
        access=patients.access(conn()),
        receipts=web_receipts.listed(ctx().conversations.receipts.recent(conn(), 5)),
        **home_values(items),
    )


def render_new(error: str | None = None, status: int = 200):
    """The new-conversation form (again with what was entered, after an error)."""
    return web.page(
        "new.html",
        status,
        error=error,
        title_value=request.form.get("title", ""),
        reference_value=form_reference(),
    )


@bp.get("/staff/")
@staff_page()
def home():
    return render_home()


@bp.get("/staff/new")
@staff_page()
def new():
    return render_new()


@bp.post("/staff/conversations")
@staff_page()
def create():
    try:
        pin_hash = patients.hash_pin(conn(), request.form.get("pin", "").strip())
    except BadRequest:
        return render_new(web.t("new.bad_pin"), 400)
    try:
        reference = references.check(form_reference())
    except BadRequest:
        return render_new(web.t("records.bad_reference"), 400)
    try:
        conv_id, token = ctx().conversations.create(
            conn(), request.form.get("title", "").strip(), pin_hash, reference
        )
    except (BadRequest, PayloadTooLarge):
        return render_new(web.t("new.bad_title"), 400)
    return link_page(conv_id, token, pin_hash is not None, 201)


@bp.get("/staff/c/<conv_id>")
@staff_page()
def conversation(conv_id: str):
    # ?quick=<id>: the quick-reply picker without JavaScript puts that text into the form.
    chosen = quick_replies.get(conn(), request.args.get("quick"))
    response = render_conversation(conv_id, body_value=chosen["body"] if chosen else "")
    records().opened(conn(), conv_id, g.staff.username)  # the patient's access log
    return response


@bp.post("/staff/c/<conv_id>/messages")
@staff_page()
def message(conv_id: str):
    error, status, msg_id = web_conversation.compose(conv_id, "staff")
    if error:
        return render_conversation(
            conv_id,
            error=error,
            status=status,
            body_value=request.form.get("body", ""),
        )
    return redirect(f"{url_for('staff.conversation', conv_id=conv_id)}#m-{msg_id}", 303)


@bp.get("/staff/c/<conv_id>/m/<msg_id>")
@staff_page()
def edit_message(conv_id: str, msg_id: str):
    return web_conversation.edit_page(conv_id, msg_id, "staff", conversation_urls(conv_id))


@bp.post("/staff/c/<conv_id>/m/<msg_id>/<any(correct, delete):action>")
@staff_page()
def change_message(conv_id: str, msg_id: str, action: str):
    failed = web_conversation.change(conv_id, msg_id, "staff", action)
    if failed and failed["status"] != 409:  # the text or no room: again, on the form
        return web_conversation.edit_page(
            conv_id, msg_id, "staff", conversation_urls(conv_id), failed
        )
    if failed:  # too late, or gone: said at the message
        return render_conversation(conv_id, status=failed["status"], edit_error=failed)
    return redirect(f"{url_for('staff.conversation', conv_id=conv_id)}#m-{msg_id}", 303)


@bp.post("/staff/c/<conv_id>/assign")
@staff_page()
def assign(conv_id: str):
    username = request.form.get("assignee", "").strip()
    try:
        Notes(ctx().conversations).assign(conn(), conv_id, username or None)
    except NotFound:
        ctx().conversations.require_live(conn(), conv_id)  # a gone conversation: its 404
        return render_conversation(conv_id, status=400, team_error=web.t("team.bad_assignee"))
    return redirect(f"{url_for('staff.conversation', conv_id=conv_id)}#team-h", 303)


@bp.post("/staff/c/<conv_id>/notes")
@staff_page()
def note(conv_id: str):
    try:
        Notes(ctx().conversations).add(
            conn(), conv_id, g.staff.staff_id, request.form.get("note", "")
        )
    except TooLong:
        error = web.t("team.note_too_long", n=MAX_NOTE_CHARS)
        return render_conversation(conv_id, status=400, team_error=error, note_value=_note())
    except BadRequest:
        return render_conversation(conv_id, status=400, team_error=web.t("team.note_empty"))
    except (ConversationFull, InsufficientStorage) as e:
        error = web_conversation.storage_error(e)
        return render_conversation(conv_id, status=e.status, team_error=error, note_value=_note())
    return redirect(f"{url_for('staff.conversation', conv_id=conv_id)}#team-h", 303)


def _note() -> str:
    return request.form.get("note", "")


@bp.route("/staff/c/<conv_id>/link", methods=["GET", "POST"])
@staff_page()
def new_link(conv_id: str):
    """A new link ends the old one: it is made only after its own confirmation page."""
    ctx().conversations.require_live(conn(), conv_id)
    if request.method in ("GET", "HEAD"):
        return _confirm_new_link(conv_id)
    if request.form.get("confirm") != "yes":
        return _confirm_new_link(conv_id, 400)
    try:
        pin_hash = patients.hash_pin(conn(), request.form.get("pin", "").strip())
    except BadRequest:
        return _confirm_new_link(conv_id, 400, web.t("new.bad_pin"))
    keep = links.keeper(ctx().keyring, ctx().config.facility, conv_id)
    token = patients.reissue(conn(), conv_id, pin_hash, keep)
    return link_page(conv_id, token, pin_hash is not None)


def _confirm_new_link(conv_id: str, status: int = 200, error: str | None = None):
    return web.page(
        "confirm_new_link.html",
        status,
        action=url_for("staff.new_link", conv_id=conv_id),
        cancel=f"{url_for('staff.conversation', conv_id=conv_id)}#link-h",
        link_error=error,
    )


@bp.get("/staff/files/<att_id>")
@staff_page()
def file(att_id: str):
    return attachment_response(att_id, g.staff)


@bp.get("/staff/c/<conv_id>/delete")
@staff_page()
def confirm_delete(conv_id: str):
    summary = ctx().conversations.get(conn(), conv_id)
    return web.page(
        "confirm_delete.html",
        side="staff",
        conv=summary,
        action=url_for("staff.delete", conv_id=conv_id),
        cancel=url_for("staff.conversation", conv_id=conv_id),
    )


@bp.post("/staff/c/<conv_id>/delete")
@staff_page()
def delete(conv_id: str):
    receipt = ctx().conversations.delete(conn(), conv_id, reason="staff")
    return web.page("deleted.html", side="staff", receipt=web_receipts.shown(receipt))


@bp.route("/staff/password", methods=["GET", "POST"])
@staff_page()
def password():
    if request.method in ("GET", "HEAD"):
        return password_page()
    try:
        auth.change_password(
            conn(), g.staff, request.form.get("current", ""), request.form.get("new", "")
        )
    except Unauthorized:
        return password_page(401, error=web.t("password.wrong"))
    except BadRequest:
        return password_page(400, error=web.t("password.rules"))
    # Changing the password ended every session, this one too: log in again.
    response = web.page(
        "message.html",
        title=web.t("password.done_title"),
        text=web.t("password.done"),
        link=url_for("staff.login"),
        link_text=web.t("login.title"),
    )
    web.clear_cookie(response, STAFF_COOKIE)
    return response


def password_page(status: int = 200, **values):
    """The own-account page: display name and password."""
    own = auth.display_names(conn()).get(g.staff.staff_id, g.staff.username)
    return web.page("password.html", status, own_name=own, **values)

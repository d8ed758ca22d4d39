"""The patient's pages: open the link, enter the PIN, read, reply, attach, delete.

Patients have no account: the link's token is traded for a session cookie at /p/<token> and
the browser is sent on to /patient/, so the token leaves the address bar, history and Referer.
"""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core import contact, devices, patients, throttle
from services.facility.core.accounts import Principal
from services.facility.core.errors import (
    LinkLocked,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from services.facility.http.auth import (
    PATIENT_COOKIE,
    PRE_COOKIE,
    check_csrf,
    csrf_for,
    staff_from_cookie,
)
from services.facility.http.context import client_id, conn, ctx, now
from services.facility.http.downloads import attachment_response
from services.facility.pages import common as web
from services.facility.pages import conversation as web_conversation
from services.facility.pages import receipts as web_receipts
from services.facility.pages.guards import DEVICE_COOKIE, dead_end, no_session, patient_page
from services.facility.pages.views import patient_urls

bp = Blueprint("patient", __name__)


def session_seconds() -> int:
    return ctx().config.session_seconds


@bp.route("/p/<token>", methods=["GET", "POST"])
def open_link(token: str):
    """Trade the link for a session; but never replace another session without asking.

    Otherwise anyone could send a patient (or a colleague) a link of their own conversation
    and have them write into it unawares (login CSRF). A link opened from another site arrives
    without the SameSite=Strict cookies that would show such a session: it is reloaded once
    from this site first, like the patient pages (Sec-Fetch-Site says where it came from).
    """
    c, t_now, client = conn(), now(), client_id()
    throttle.check(c, "token", client, t_now)
    try:
        conv_id, _ = patients.link_conversation(c, token)
    except NotFound:
        throttle.record_failure(c, "token", client, t_now)
        return dead_end(404, "link.invalid")
    except LinkLocked:
        return dead_end(403, "pin.locked")
    if request.method == "POST":
        check_csrf(request.cookies.get(PRE_COOKIE))
    elif request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        if request.args.get("retry") is None:
            return web.page("bounce.html", target=f"{request.script_root}{request.path}?retry=1")
    old = request.cookies.get(PATIENT_COOKIE)
    current = patients.session(c, old, t_now)
    staff, _ = staff_from_cookie()
    if request.method == "GET" and (
        staff is not None or (current is not None and current.conversation_id != conv_id)
    ):
        return web.page(
            "switch.html",
            as_staff=staff is not None,
            csrf=csrf_for(web.pre_session()),
            action=f"{request.script_root}{request.path}",
            back=url_for("staff.home" if staff is not None else "patient.conversation"),
        )
    session = patients.open_link(c, token, t_now, session_seconds())
    if old:
        patients.end_session(c, old)
    needs_pin = not patients.session(c, session, t_now).pin_ok
    target = url_for("patient.pin") if needs_pin else newest()
    response = redirect(target, 303)
    web.set_cookie(response, PATIENT_COOKIE, session, session_seconds())
    return response


def newest() -> str:
    """The patient's page, scrolled to the newest message by the browser itself (the fragment
    names it; no script needed). An empty conversation has no such anchor: the page's top."""
    return f"{url_for('patient.conversation')}#newest"


@bp.route("/patient/pin", methods=["GET", "POST"])
def pin():
    token = request.cookies.get(PATIENT_COOKIE)
    c = conn()
    session = patients.session(c, token, now())
    if session is None:
        return no_session()
    if session.pin_ok:
        return redirect(newest(), 303)
    g.csrf = csrf_for(token)
    error, status = None, 200
    if request.method == "POST":
        check_csrf(token)
        try:
            full = patients.enter_pin(
                c, token, request.form.get("pin", ""), client_id(), now(), session_seconds()
            )
        except Unauthorized:
            error, status = (
                web.t("pin.wrong", n=patients.pin_tries_left(c, session.conversation_id)),
                401,
            )
        except LinkLocked:
            response = dead_end(403, "pin.locked")
            patients.end_session(c, token)
            web.clear_cookie(response, PATIENT_COOKIE)
            return response
        except TooManyRequests as e:
            response = web.page(
                "pin.html", 429, error=web.t("error.throttled"), contact=contact.get(c)
            )
            response.headers.update(e.headers)
            return response
        else:
            response = redirect(newest(), 303)
            web.set_cookie(response, PATIENT_COOKIE, full, session_seconds())
            return response
    return web.page("pin.html", status, error=error, contact=contact.get(c))


@bp.get("/patient/")
@patient_page
def conversation():
    return web_conversation.render(g.conversation_id, "patient", patient_urls())


@bp.post("/patient/messages")
@patient_page
def message():
    error, status, msg_id = web_conversation.compose(g.conversation_id, "patient")
    if error:
        return web_conversation.render(
            g.conversation_id,
            "patient",
            patient_urls(),
            error=error,
            status=status,
            body_value=request.form.get("body", ""),
        )
    return redirect(f"{url_for('patient.conversation')}#m-{msg_id}", 303)


@bp.get("/patient/m/<msg_id>")
@patient_page
def edit_message(msg_id: str):
    return web_conversation.edit_page(g.conversation_id, msg_id, "patient", patient_urls())


@bp.post("/patient/m/<msg_id>/<any(correct, delete):action>")
@patient_page
def change_message(msg_id: str, action: str):
    failed = web_conversation.change(g.conversation_id, msg_id, "patient", action)
    if failed and failed["status"] != 409:  # the text or no room: again, on the form
        return web_conversation.edit_page(
            g.conversation_id, msg_id, "patient", patient_urls(), failed
        )
    if failed:
        return web_conversation.render(
            g.conversation_id, "patient", patient_urls(), status=failed["status"], edit_error=failed
        )
    return redirect(f"{url_for('patient.conversation')}#m-{msg_id}", 303)


@bp.get("/patient/files/<att_id>")
@patient_page
def file(att_id: str):
    return attachment_response(att_id, Principal("patient", conversation_id=g.conversation_id))


@bp.get("/patient/delete")
@patient_page
def confirm_delete():
    return web.page(
        "confirm_delete.html",
        side="patient",
        action=url_for("patient.delete"),
        cancel=url_for("patient.conversation"),
    )


@bp.post("/patient/delete")
@patient_page
def delete():
    # The same complete deletion as the API; the sessions go with it (cascade).
    receipt = ctx().conversations.delete(conn(), g.conversation_id, reason="patient")
    response = web.page("deleted.html", side="patient", receipt=web_receipts.shown(receipt))
    web.clear_cookie(response, PATIENT_COOKIE)
    web.clear_cookie(response, DEVICE_COOKIE)  # its record went with the conversation
    return response


@bp.post("/patient/leave")
@patient_page
def leave():
    patients.end_session(conn(), g.patient_token)
    devices.forget(
        conn(), request.cookies.get(DEVICE_COOKIE)
    )  # signed out means on this device too
    response = web.page("message.html", title=web.t("leave.title"), text=web.t("leave.text"))
    web.clear_cookie(response, PATIENT_COOKIE)
    web.clear_cookie(response, DEVICE_COOKIE)
    return response

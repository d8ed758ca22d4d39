"""The guards in front of the pages: a logged-in staff member (an admin), a patient's session.

Each runs before its view, sets what the view reads on `g` (the caller, the CSRF token) and
checks the CSRF token of every post.
"""

import functools

from flask import g, redirect, request, url_for

from services.facility.core import contact, devices, patients
from services.facility.http.auth import PATIENT_COOKIE, check_csrf, csrf_for, staff_from_cookie
from services.facility.http.context import conn, ctx, now
from services.facility.pages import common as web

DEVICE_COOKIE = "__Host-mc_device"  # "stay signed in on this device" (core/devices.py)


def staff_page(admin: bool = False):
    """Run the view for a logged-in staff member (an admin, if admin); check CSRF on posts."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            who, token = staff_from_cookie()
            if who is None:
                return redirect(url_for("staff.login"), 303)
            g.staff, g.csrf = who, csrf_for(token)
            g.staff_token = token
            if request.method == "POST":
                check_csrf(token)
            if admin and not who.is_admin:
                return web.page(
                    "message.html", 403, title=web.t("error.title"), text=web.t("error.admin_only")
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate


def patient_page(view):
    """Run the view for a patient whose session (with PIN, if one is owed) is live."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = request.cookies.get(PATIENT_COOKIE)
        session = patients.session(conn(), token, now())
        if session is None:
            return no_session()
        if not session.pin_ok:
            return redirect(url_for("patient.pin"), 303)
        g.csrf = csrf_for(token)
        g.patient_token = token
        g.conversation_id = session.conversation_id
        if request.method == "POST":
            check_csrf(token)
        return view(*args, **kwargs)

    return wrapper


def no_session():
    # A device the patient chose to stay signed in on: a new session, and the page again.
    if request.method == "GET":
        session = devices.resume(
            conn(), request.cookies.get(DEVICE_COOKIE), now(), ctx().config.session_seconds
        )
        if session is not None:
            response = redirect(request.path, 303)
            web.set_cookie(response, PATIENT_COOKIE, session, ctx().config.session_seconds)
            return response
    # A link opened from another site (mail, SMS web view) is redirected here without the
    # SameSite=Strict cookie; one same-site reload brings it along.
    if request.method == "GET" and request.args.get("retry") is None:
        return web.page("bounce.html", target=f"{request.path}?retry=1")
    return dead_end(401, "session.ended")


def dead_end(status: int, key: str):
    """A page where the patient cannot go on: what happened, and how to reach the practice."""
    return web.page(
        "message.html",
        status,
        title=web.t(f"{key}_title"),
        text=web.t(key),
        contact=contact.get(conn()),
    )

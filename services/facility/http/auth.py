"""Who is calling: the one place that reads bearer tokens and session cookies.

Sessions of the pages live server-side (staff_sessions, patient_sessions): a cookie holds only a
random token whose SHA-256 the database knows. The CSRF token of a page is derived from the session
token, so it is tied to that session without storing anything more. The JSON API accepts a cookie
session only together with that token in X-CSRF-Token, which makes every cookie-authenticated API
call safe from cross-site requests, reads included.
"""

import base64
import functools
import hashlib
import hmac

from flask import Flask, g, request

from services.facility.core import accounts, patients, throttle
from services.facility.core.accounts import Principal
from services.facility.core.errors import Forbidden, NotFound, Unauthorized
from services.facility.http.context import client_id, conn, now

# "__Host-": browsers keep such a cookie only if it is Secure, has Path=/ and no Domain, so it
# belongs to this facility's origin alone and no other host (a sibling facility) can set it.
STAFF_COOKIE = "__Host-mc_staff"
PATIENT_COOKIE = "__Host-mc_patient"
PRE_COOKIE = "__Host-mc_pre"  # anonymous forms (login) get their CSRF token from this one
CSRF_HEADER = "X-CSRF-Token"
MAX_TOKEN = 128


class CsrfError(Forbidden):
    code = "csrf"


def csrf_for(secret: str) -> str:
    """The CSRF token belonging to a session (or pre-session) token."""
    digest = hashlib.sha256(b"medcell-csrf|" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_csrf(secret: str | None) -> None:
    """Refuse a state-changing request whose form field or header lacks the session's token."""
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf", "")
    if not secret or not same(sent, csrf_for(secret)):
        raise CsrfError("the form has expired or did not come from this site: please try again")


def same(sent: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and headers may carry anything.
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode())


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def staff_from_cookie() -> tuple[Principal | None, str | None]:
    """The staff member whose session cookie this request carries, and the cookie's token."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token or len(token) > MAX_TOKEN:
        return None, None
    who = _resolve_quietly(token)
    return (who, token) if who is not None and who.kind == "staff" else (None, None)


def _resolve_quietly(token: str) -> Principal | None:
    try:
        return accounts.resolve(conn(), token, now())
    except Forbidden:
        return None


def _cookie_principal() -> None:
    """Let the page's own JavaScript use the API with its cookie session plus CSRF token."""
    if not request.path.startswith("/api/") or "Authorization" in request.headers:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        return
    staff = request.cookies.get(STAFF_COOKIE)
    if staff and len(staff) <= MAX_TOKEN and same(sent, csrf_for(staff)):
        who = _resolve_quietly(staff)
        if who is not None and who.kind == "staff":
            g.principal = who
        return
    patient = request.cookies.get(PATIENT_COOKIE)
    if patient and same(sent, csrf_for(patient)):
        session = patients.session(conn(), patient, now())
        if session is not None and session.pin_ok:
            g.principal = Principal("patient", conversation_id=session.conversation_id)


def authenticate() -> Principal:
    """The API caller, from the bearer token or (with its CSRF token) a page's session cookie."""
    if g.get("principal"):
        return g.principal
    token = bearer_token()
    if token is None:
        raise Unauthorized("authentication required")
    c, t = conn(), now()
    principal = accounts.resolve(c, token, t) if len(token) <= MAX_TOKEN else None
    if principal is None:
        # Throttle only the failures: a guesser is stopped, a valid token costs no extra query.
        throttle.check(c, "token", client_id(), t)
        throttle.record_failure(c, "token", client_id(), t)
        raise Unauthorized("invalid or expired token")
    g.principal = principal
    return principal


def require(*, patient: bool = False, admin: bool = False):
    """Allow staff (admins only, if admin) and, if patient, the conversation's own patient."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            who = authenticate()
            if who.kind == "patient":
                if not patient:
                    raise Forbidden("this needs a staff account")
                conv_id = kwargs.get("conv_id")
                if conv_id is not None and conv_id != who.conversation_id:
                    raise NotFound("no such conversation")
            elif admin and not who.is_admin:
                raise Forbidden("this needs an admin account")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def init_app(app: Flask) -> None:
    app.before_request(_cookie_principal)

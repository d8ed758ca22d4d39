"""Web pages for staff and patients: the plumbing they share (cookies, CSRF, language, headers).

Sessions live server-side (staff_sessions, patient_sessions): a cookie holds only a random token
whose SHA-256 the database knows. The CSRF token of a page is derived from the session token, so
it is tied to that session without storing anything more, and it cannot be guessed from outside.
The JSON API accepts a cookie session only together with that token in X-CSRF-Token, which makes
every cookie-authenticated API call safe from cross-site requests, reads included.
"""

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from flask import Flask, Response, g, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from services.facility.api import conn, ctx, now
from services.facility.core import accounts as auth
from services.facility.core import patients
from services.facility.core.errors import FacilityError, Forbidden
from services.facility.pages import i18n

CSP = "default-src 'self'; frame-ancestors 'none'"
STAFF_COOKIE = "mc_staff"
PATIENT_COOKIE = "mc_patient"
PRE_COOKIE = "mc_pre"  # anonymous forms (login) get their CSRF token from this one
LANG_COOKIE = "mc_lang"
CSRF_HEADER = "X-CSRF-Token"
# What patients and staff may attach in the web pages, recognised by content, not by name.
UPLOAD_TYPES = {
    "image/jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "image/png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda h: h[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "image/heic": lambda h: h[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"),
    "application/pdf": lambda h: h.startswith(b"%PDF-"),
}
UPLOAD_ACCEPT = ",".join([*UPLOAD_TYPES, ".heic", ".jpg", ".jpeg", ".png", ".pdf"])


class CsrfError(Forbidden):
    code = "csrf"


def csrf_for(secret: str) -> str:
    """The CSRF token belonging to a session (or pre-session) token."""
    digest = hashlib.sha256(b"medcell-csrf|" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_csrf(secret: str | None) -> None:
    """Refuse a state-changing request whose form field or header lacks the session's token."""
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf", "")
    if not secret or not _same(sent, csrf_for(secret)):
        raise CsrfError("the form has expired or did not come from this site: please try again")


def _same(sent: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and headers may carry anything.
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode())


def cookie_path() -> str:
    return request.script_root or "/"


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=cookie_path(),
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=cookie_path(), secure=True, httponly=True, samesite="Strict")


def pre_session() -> str:
    """The anonymous pre-session token of this browser (a new one is set after the request)."""
    token = request.cookies.get(PRE_COOKIE)
    if not token or len(token) > 64:
        token = g.new_pre = secrets.token_urlsafe(32)
    return token


def page(template: str, status: int = 200, **values) -> Response:
    """A rendered page that no cache keeps (pages may show patient content)."""
    response = make_response(render_template(template, **values), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def t(key: str, **values) -> str:
    return i18n.text(g.get("lang", i18n.DEFAULT), key, **values)


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="seconds")[:-6] + "Z"


def sniff_upload(head: bytes) -> str | None:
    """The content type of an allowed upload from its first bytes, or None."""
    return next((kind for kind, test in UPLOAD_TYPES.items() if test(head)), None)


def lang_url(code: str) -> str:
    """This page in another language (the home page, after a form post)."""
    path = request.path if request.method == "GET" else "/"
    return f"{request.script_root}{path}?lang={code}"


ERROR_TEXTS = {
    "csrf": "error.csrf",
    "not_found": "error.not_found",
    "forbidden": "error.forbidden",
    "payload_too_large": "error.too_large",
    "too_many_requests": "error.throttled",
    "bad_request": "error.bad_request",
    "method_not_allowed": "error.bad_request",
    "link_locked": "pin.locked",
}


def error_page(e: Exception) -> Response:
    """Errors in pages become a page in the reader's language (the API keeps its JSON)."""
    if isinstance(e, FacilityError):
        status, code, headers = e.status, e.code, e.headers
    elif isinstance(e, HTTPException):
        status, headers = e.code or 500, {}
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            status, "bad_request" if status < 500 else "internal"
        )
    else:
        raise e
    if status >= 500:
        code = "internal"
    key = ERROR_TEXTS.get(code, "error.internal")
    response = page(
        "error.html",
        status,
        message=t(
            key,
            size=i18n.format_size(
                ctx()["config"].max_attachment_bytes, g.get("lang", i18n.DEFAULT)
            ),
        ),
    )
    response.headers.update(headers)
    return response


# -- request hooks ------------------------------------------------------------------------


def _choose_language() -> None:
    g.lang = i18n.choose(
        request.args.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("Accept-Language", ""),
    )


def _cookie_principal() -> None:
    """Let the page's own JavaScript use the API with its cookie session plus CSRF token."""
    if not request.path.startswith("/api/") or "Authorization" in request.headers:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        return
    c, t_now = conn(), now()
    staff = request.cookies.get(STAFF_COOKIE)
    if staff and len(staff) <= 128 and _same(sent, csrf_for(staff)):
        who = _resolve_quietly(staff, t_now)
        if who is not None and who.kind == "staff":
            g.principal = who
        return
    patient = request.cookies.get(PATIENT_COOKIE)
    if patient and _same(sent, csrf_for(patient)):
        session = patients.session(c, patient, t_now)
        if session is not None and session.pin_ok:
            g.principal = auth.Principal("patient", conversation_id=session.conversation_id)


def _resolve_quietly(token: str, t_now: int) -> auth.Principal | None:
    try:
        return auth.resolve(conn(), token, t_now)
    except Forbidden:
        return None


def _finish(response: Response) -> Response:
    # The gateway adds the same; set here too so the app is safe when run on its own.
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.args.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            request.args["lang"],
            max_age=365 * 86400,
            path=cookie_path(),
            secure=True,
            httponly=True,
            samesite="Lax",
        )
    if g.get("new_pre"):
        set_cookie(response, PRE_COOKIE, g.new_pre, 3600)
    return response


def _template_values() -> dict:
    config = ctx()["config"]
    return {
        "t": t,
        "lang": g.get("lang", i18n.DEFAULT),
        "languages": i18n.LANGUAGES,
        "lang_url": lang_url,
        "facility_name": config.facility_name,
        "iso": iso,
        "fmt_time": lambda us: i18n.format_time(us, g.get("lang", i18n.DEFAULT)),
        "fmt_size": lambda n: i18n.format_size(n, g.get("lang", i18n.DEFAULT)),
        "fmt_duration": lambda s: i18n.format_duration(s, g.get("lang", i18n.DEFAULT)),
        "staff": g.get("staff"),
        "csrf": g.get("csrf", ""),
    }


def init_app(app: Flask) -> None:
    from services.facility.pages import admin as web_admin
    from services.facility.pages import patient as web_patient
    from services.facility.pages import staff as web_staff

    app.before_request(_choose_language)
    app.before_request(_cookie_principal)
    app.after_request(_finish)
    app.context_processor(_template_values)
    for module in (web_patient, web_staff, web_admin):
        app.register_blueprint(module.bp)

"""The plumbing the pages share: rendering, language, CSRF fields, cookies, error pages, headers."""

import secrets

from flask import Flask, Response, g, make_response, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from medcell_common.times import iso_utc
from services.facility.core import uploads
from services.facility.core.errors import (
    CryptoError,
    FacilityError,
    InsufficientStorage,
    RecordDamaged,
)
from services.facility.http.auth import PATIENT_COOKIE, PRE_COOKIE, STAFF_COOKIE
from services.facility.http.context import ctx
from services.facility.http.errors import allowed_methods
from services.facility.pages import i18n

# blob: frames: the compose form's preview of a chosen PDF (static/medcell.js), nothing else.
CSP = "default-src 'self'; frame-src blob:; frame-ancestors 'none'"
LANG_COOKIE = "__Host-mc_lang"
# What patients and staff may attach: core/uploads.py's rule, shared with the API.
UPLOAD_TYPES = uploads.TYPES
UPLOAD_ACCEPT = ",".join([*UPLOAD_TYPES, ".heic", ".jpg", ".jpeg", ".png", ".pdf"])


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """A host-only cookie (every name is `__Host-…`: Secure, Path=/, no Domain)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="Strict")


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
    """A microsecond clock reading as the pages' machine-readable moments (to the second)."""
    return iso_utc(us / 1e6)


def lang_url(code: str) -> str:
    """This page in another language (the home page, after a form post)."""
    path = request.path if request.method == "GET" else "/"
    return f"{path}?lang={code}"


ERROR_TEXTS = {
    "csrf": "error.csrf",
    "not_found": "error.not_found",
    "forbidden": "error.forbidden",
    "payload_too_large": "error.too_large",
    "too_many_requests": "error.throttled",
    "bad_request": "error.bad_request",
    "method_not_allowed": "error.bad_request",
    "link_locked": "pin.locked",
    "conversation_full": "quota.conversation_full",
    "facility_full": "quota.facility_full",
    "storage_full": "quota.facility_full",
}


def way_back() -> tuple[str, str]:
    """Where an error page leads its reader: a patient back to their link or conversation (the
    start page "/" is the staff login), anyone else to the start page. Cookies and path only:
    the error may be the database's own."""
    if request.blueprint == "patient" and request.path.startswith("/p/"):
        return f"{request.script_root}{request.path}", t("error.back_patient")
    patient_area = request.blueprint == "patient"
    if patient_area or (
        request.cookies.get(PATIENT_COOKIE) and not request.cookies.get(STAFF_COOKIE)
    ):
        return url_for("patient.conversation"), t("error.back_patient")
    return f"{request.script_root}/", t("error.back")


def error_page(e: FacilityError | HTTPException) -> Response:
    """Errors in pages become a page in the reader's language (the API keeps its JSON)."""
    if isinstance(e, FacilityError):
        status, code, headers = e.status, e.code, e.headers
    else:
        status, headers = e.code or 500, allowed_methods(e)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            status, "bad_request" if status < 500 else "internal"
        )
    if status >= 500 and not isinstance(e, InsufficientStorage):
        code = "internal"
    # Missing keys are no passing fault: say so, so that staff call the administrator.
    key = "error.keys" if isinstance(e, CryptoError) else ERROR_TEXTS.get(code, "error.internal")
    if isinstance(e, RecordDamaged):
        key = "error.damaged"
    back, back_text = way_back()
    response = page(
        "error.html",
        status,
        back=back,
        back_text=back_text,
        message=t(
            key,
            size=i18n.format_size(ctx().config.max_attachment_bytes, g.get("lang", i18n.DEFAULT)),
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
            path="/",
            secure=True,
            httponly=True,
            samesite="Lax",
        )
    if g.get("new_pre"):
        set_cookie(response, PRE_COOKIE, g.new_pre, 3600)
    return response


def _template_values() -> dict:
    config = ctx().config
    return {
        "t": t,
        "lang": g.get("lang", i18n.DEFAULT),
        "languages": i18n.LANGUAGES,
        "lang_url": lang_url,
        "facility_name": config.facility_name,
        "iso": iso,
        "fmt_time": lambda us: i18n.format_time(us, g.get("lang", i18n.DEFAULT), config.timezone),
        "timezone": config.timezone,
        "fmt_size": lambda n: i18n.format_size(n, g.get("lang", i18n.DEFAULT)),
        "fmt_duration": lambda s: i18n.format_duration(s, g.get("lang", i18n.DEFAULT)),
        "staff": g.get("staff"),
        "csrf": g.get("csrf", ""),
    }


def init_app(app: Flask) -> None:
    """The pages' request hooks (create_app registers their blueprints)."""
    app.before_request(_choose_language)
    app.after_request(_finish)
    app.context_processor(_template_values)

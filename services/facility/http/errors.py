"""One handler for every error: the contract's JSON shape, or a page for the pages' routes."""

import errno
import logging
import sqlite3
from collections.abc import Callable, Collection

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from services.facility.core import store
from services.facility.core.errors import (
    FacilityError,
    InsufficientStorage,
    RecordDamaged,
    StorageFull,
)

log = logging.getLogger("medcell.facility")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    507: "insufficient_storage",
}


def allowed_methods(e: HTTPException) -> dict:
    """The `Allow` header a 405 must carry (RFC 9110), from the methods the route serves."""
    methods = getattr(e, "valid_methods", None)
    return {"Allow": ", ".join(sorted(methods))} if e.code == 405 and methods else {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="medcell"')
    return response


def init_app(
    app: Flask,
    page_blueprints: Collection[str] = (),
    render_page: Callable[[FacilityError | HTTPException], Response] | None = None,
) -> None:
    """Answer every error: with `render_page` on the routes of `page_blueprints`, else JSON.

    What a page cannot explain (an unexpected error, a full disk outside a write) stays JSON.
    """

    def handle(e: Exception):
        if isinstance(e, FacilityError | HTTPException):
            if render_page is not None and request.blueprint in page_blueprints:
                return render_page(e)
            if isinstance(e, FacilityError):
                return _facility_error(e)
            return _http_error(e)
        if full_disk(e):
            # A write outside store.write (a library's own commit): still nothing half-stored.
            return _facility_error(StorageFull(store.FULL_MESSAGE))
        log.exception("unhandled error")
        return error_response(500, "internal", "Internal error.")

    app.register_error_handler(Exception, handle)


def _facility_error(e: FacilityError) -> Response:
    # A damaged record is said as such: staff must know the record is not to be trusted.
    if e.status >= 500 and not isinstance(e, InsufficientStorage | RecordDamaged):
        log.error("internal error", extra={"fields": {"error": type(e).__name__}})
        return error_response(500, "internal", "Internal error.")
    return error_response(e.status, e.code, e.message, e.headers)


def _http_error(e: HTTPException) -> Response:
    status = e.code or 500
    message = {413: "The request body is too large."}.get(status, e.description or e.name)
    return error_response(status, HTTP_CODES.get(status, "error"), message, allowed_methods(e))


def full_disk(e: BaseException) -> bool:
    """SQLite's "database or disk is full", or ENOSPC from a file write."""
    if isinstance(e, sqlite3.OperationalError):
        return store.is_full(e)
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)

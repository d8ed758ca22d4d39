"""What a request handler reaches: the facility's parts, the clock, the caller, the body."""

import io

from flask import Flask, Request, current_app, request

from medcell_common.times import iso_utc
from services.facility.core import Facility, throttle
from services.facility.core.errors import BadRequest

EXTENSION = "medcell"


class MemoryRequest(Request):
    """Keep uploads in memory: werkzeug would spool large ones to a temp file in plaintext."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return io.BytesIO()


def init_app(app: Flask, facility: Facility) -> None:
    """Make the facility's parts reachable from every request (ctx())."""
    app.extensions[EXTENSION] = facility


def facility_of(app: Flask) -> Facility:
    return app.extensions[EXTENSION]


def ctx() -> Facility:
    """The facility the current request is served by."""
    return current_app.extensions[EXTENSION]


def conn():
    return ctx().store.conn()


def now() -> int:
    return ctx().clock()


def deadlines_changed() -> None:
    """Wake the deletion job: a deadline may have moved closer."""
    ctx().deadlines_changed.set()


def iso(us: int) -> str:
    """A microsecond clock reading as the API writes moments (to the millisecond)."""
    return iso_utc(us / 1e6, milliseconds=True)


def client_id() -> str:
    """Who the throttles count: the address the gateway saw (an IPv6 client by its /64)."""
    return throttle.client_network(request.remote_addr)


def json_body() -> dict:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def patient_url(token: str) -> str:
    """The patient's link: from the configured origin only, whatever Host the request named."""
    return ctx().config.url(f"p/{token}")

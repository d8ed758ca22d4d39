"""The outbox on the socket: where the supervisor fetches the mails the notifier queued.

`GET /_medcell/outbox` hands the supervisor up to 50 queued notifications (`{"mails": [{"id", "to",
"kind", "lang", "link", "facility_name"}]}`, no text: the relay writes the mails from its own
templates); `POST /_medcell/outbox/ack` with `{"ids": [...]}` deletes those it has handed to the
SMTP server or refused. Like the status endpoint they are answered outside Flask, never
logged, never counted as activity, and only for callers on the socket itself: a request with
X-Forwarded-For (everything through the gateway) is passed on to the app, which answers 404.
"""

import json
import logging
from collections.abc import Callable, Iterable

from services.facility.core import Facility
from services.facility.core.errors import BadRequest, FacilityError, PayloadTooLarge

OUTBOX_PATH = "/_medcell/outbox"
ACK_PATH = "/_medcell/outbox/ack"
MAX_ACK_BYTES = 64 * 1024

log = logging.getLogger("medcell.facility")


def endpoints(facility: Facility) -> dict[str, Callable]:
    """The socket-only WSGI handlers by path, for the activity middleware."""

    def fetch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return _send(start_response, 405, {"error": _err("method_not_allowed")}, "GET")
        mails = facility.notifier.take(facility.store.conn())
        return _send(start_response, 200, {"mails": mails})

    def ack(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _send(start_response, 405, {"error": _err("method_not_allowed")}, "POST")
        try:
            ids = _read_ids(environ)
            deleted = facility.notifier.acknowledge(facility.store.conn(), ids)
        except FacilityError as e:
            return _send(start_response, e.status, {"error": _err(e.code, e.message)})
        return _send(start_response, 200, {"deleted": deleted})

    return {OUTBOX_PATH: fetch, ACK_PATH: ack}


def _read_ids(environ: dict) -> object:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as e:
        raise BadRequest("bad Content-Length") from e
    if length > MAX_ACK_BYTES:
        raise PayloadTooLarge(f"at most {MAX_ACK_BYTES} bytes")
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"null")
    except ValueError as e:
        raise BadRequest("the body must be JSON") from e
    if not isinstance(body, dict) or set(body) != {"ids"}:
        raise BadRequest('the body must be {"ids": [...]}')
    return body["ids"]


def _err(code: str, message: str = "method not allowed") -> dict:
    return {"code": code, "message": message}


_REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 413: "Payload Too Large"}


def _send(start_response: Callable, status: int, body: dict, allow: str = "") -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"),
    ]
    if allow:
        headers.append(("Allow", allow))
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [data]

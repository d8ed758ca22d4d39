"""Notifications in the app: the message hook that queues mails, and the outbox on the socket.

`GET /_medcell/outbox` hands the supervisor up to 50 queued mails (`{"mails": [{"id", "to",
"subject", "body"}]}`); `POST /_medcell/outbox/ack` with `{"ids": [...]}` deletes those it has
handed to the SMTP server. Like the status endpoint they are answered outside Flask, never
logged, never counted as activity, and only for callers on the socket itself: a request with
X-Forwarded-For (everything through the gateway) is passed on to the app, which answers 404.
"""

import json
import logging
from collections.abc import Callable, Iterable

from flask import Flask

from services.facility.core import Facility
from services.facility.core.errors import BadRequest, FacilityError, PayloadTooLarge
from services.facility.core.notify import Notifier

OUTBOX_PATH = "/_medcell/outbox"
ACK_PATH = "/_medcell/outbox/ack"
MAX_ACK_BYTES = 64 * 1024

log = logging.getLogger("medcell.facility")


def init_app(app: Flask, facility: Facility) -> Notifier:
    """Make the facility's notifier and have every new message queue the mails it calls for."""
    config = facility.config
    notifier = Notifier(
        facility.keyring, config.facility, config.facility_name, facility.clock, config.mail
    )
    app.extensions["medcell"]["notifier"] = notifier
    if not config.mail:
        # Switched off since they were queued: they would keep the facility from sleeping.
        notifier.discard_all(facility.store.conn())

    def on_message(conn, conv_id: str, author: str) -> None:
        try:
            # The staff's list at the configured origin, never at a Host a client named.
            notifier.message_added(conn, conv_id, author, lambda: config.url("staff/"))
        except Exception:
            # The message is stored already; a mail that cannot be queued must not undo that.
            log.exception("notify_failed", extra={"fields": {"event": "notify_failed"}})

    facility.conversations.on_message = on_message
    return notifier


def endpoints(extensions: Callable[[], dict]) -> dict[str, Callable]:
    """The socket-only WSGI handlers by path, for the activity middleware."""

    def fetch(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return _send(start_response, 405, {"error": _err("method_not_allowed")}, "GET")
        medcell = extensions()
        mails = medcell["notifier"].take(medcell["store"].conn())
        return _send(start_response, 200, {"mails": mails})

    def ack(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _send(start_response, 405, {"error": _err("method_not_allowed")}, "POST")
        medcell = extensions()
        try:
            ids = _read_ids(environ)
            deleted = medcell["notifier"].acknowledge(medcell["store"].conn(), ids)
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

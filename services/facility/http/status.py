"""Idle accounting and the internal status endpoint that the supervisor reads over the socket.

The supervisor decides when a facility may sleep from `GET /_medcell/status`. It is answered here,
outside Flask, so that probing costs little and never reaches the access log. Only callers on the
socket itself get it: nginx and the activator always set X-Forwarded-For, so a request that carries
that header is passed on to the app, which answers 404 as for any unknown path.

What counts as activity: every request except live-update polls (`X-Medcell-Poll: 1` on a GET),
`/healthz` and the status endpoint. Everything, polls included, counts as in flight until the
server closes its response body, so a long download keeps the facility awake to its last byte.
"""

import json
from collections.abc import Callable, Iterable

from werkzeug.wsgi import ClosingIterator

from services.facility.core.activity import Activity

STATUS_PATH = "/_medcell/status"
POLL_HEADER = "HTTP_X_MEDCELL_POLL"
UNCOUNTED_PATHS = frozenset({"/healthz"})


def is_poll(environ: dict) -> bool:
    return environ.get(POLL_HEADER) == "1" and environ.get("REQUEST_METHOD") in ("GET", "HEAD")


class ActivityMiddleware:
    """WSGI middleware: counts requests for `activity` and answers the status endpoint.

    `report` returns the rest of the status (busy, next_deadline); it is called per status request.
    `internal` maps further socket-only paths (the outbox) to WSGI handlers of their own.
    """

    def __init__(
        self,
        app: Callable,
        activity: Activity,
        report: Callable[[], dict],
        internal: dict[str, Callable] | None = None,
    ):
        self.app = app
        self.activity = activity
        self.report = report
        self.internal = internal or {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == STATUS_PATH and "HTTP_X_FORWARDED_FOR" not in environ:
            return self._status(environ, start_response)
        if path in self.internal and "HTTP_X_FORWARDED_FOR" not in environ:
            return self.internal[path](environ, start_response)
        counted = path not in UNCOUNTED_PATHS and path != STATUS_PATH and not is_poll(environ)
        self.activity.begin(counted)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.activity.end(counted)
            raise
        # The server closes the body when it has sent the last byte or the client went away.
        return ClosingIterator(body, lambda: self.activity.end(counted))

    def _status(self, environ: dict, start_response: Callable) -> list[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        status = {**self.activity.snapshot(), **self.report()}
        body = json.dumps(status, separators=(",", ":")).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body] if environ["REQUEST_METHOD"] == "GET" else [b""]

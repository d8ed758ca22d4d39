"""medcell gateway: the one HTTPS entry point, forwarding /f/<slug>/ to each facility."""

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from flask import Response
from werkzeug.exceptions import HTTPException

from . import accesslog, dispatch
from .errors import BadRequest, GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from .headers import apply_security_headers
from .proxy import UpstreamPool
from .routes import RouteTable
from .settings import routes_file, settings_from_env


def create_app(config: Mapping | None = None) -> "Gateway":
    """Build the gateway WSGI app; settings come from the environment, then from `config`."""
    settings = settings_from_env(os.environ)
    if config:
        settings.update(config)
    accesslog.configure(logging.getLogger(accesslog.LOGGER))

    upstreams = UpstreamPool(settings["POOL_SIZE"])
    routes = RouteTable(
        routes_file(settings),
        refresh_interval=settings["ROUTES_REFRESH"],
        on_change=lambda table: upstreams.keep_only(r.upstream for r in table.values()),
    )
    return Gateway(settings, routes, upstreams)


class Gateway:
    """The WSGI app: every request takes the one path in dispatch.handle, then the same finish.

    A plain callable rather than a Flask app: the gateway routes on the raw target itself and has
    one error handler and one response hook, so Flask's URL matching, request and app contexts and
    hook machinery were pure cost (about a sixth of its CPU per proxied request).
    """

    def __init__(self, config: dict, routes: RouteTable, upstreams: UpstreamPool):
        self.config = config
        self.routes = routes
        self.upstreams = upstreams

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        record = accesslog.AccessRecord(method=environ.get("REQUEST_METHOD", "GET").upper())
        try:
            response = dispatch.handle(self, environ, record)
        except Exception as error:
            response = render_error(error)
        _finish_response(response, record)
        return response(environ, start_response)


def _finish_response(response: Response, record: accesslog.AccessRecord) -> None:
    apply_security_headers(response.headers, cacheable=record.route == "static")
    if record.quiet:
        return
    record.status = response.status_code
    if not response.is_streamed:  # streamed bodies are counted as they pass
        record.bytes_out = response.calculate_content_length() or 0
    response.call_on_close(record.emit)


def render_error(error: Exception) -> Response:
    """The one place errors become the contract's JSON shape: {"error": {"code", "message"}}."""
    if isinstance(error, HTTPException):
        # Werkzeug's own refusals (a body cut short) become the gateway's.
        error = _FROM_WERKZEUG.get(error.code, GatewayError)()
    elif not isinstance(error, GatewayError):
        # Only the type: messages of upstream and library errors quote URLs, which hold tokens.
        accesslog.event("internal_error", logging.ERROR, error=type(error).__name__)
        error = GatewayError()
    body = json.dumps({"error": {"code": error.code, "message": error.message}}, sort_keys=True)
    return Response(body, status=error.status, mimetype="application/json", headers=error.headers)


_FROM_WERKZEUG = {400: BadRequest, 404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}

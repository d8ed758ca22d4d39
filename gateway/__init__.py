"""medcell gateway: the one HTTPS entry point, forwarding /f/<slug>/ to each facility."""

import logging
import os
from collections.abc import Mapping

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from . import accesslog, dispatch
from .errors import BadRequest, GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from .headers import apply_security_headers
from .proxy import UpstreamPool
from .routes import RouteTable
from .settings import routes_file, settings_from_env


def create_app(config: Mapping | None = None) -> Flask:
    """Build the gateway WSGI app; settings come from the environment, then from `config`."""
    app = Flask(__name__)
    app.config.from_mapping(settings_from_env(os.environ))
    if config:
        app.config.update(config)
    accesslog.configure(logging.getLogger(accesslog.LOGGER))

    upstreams = UpstreamPool(app.config["POOL_SIZE"])
    app.extensions["medcell_upstreams"] = upstreams
    app.extensions["medcell_routes"] = RouteTable(
        routes_file(app.config),
        refresh_interval=app.config["ROUTES_REFRESH"],
        on_change=lambda routes: upstreams.keep_only(r.upstream for r in routes.values()),
    )

    # Every path goes to one view, which routes on the raw target itself: Flask's own matching,
    # slash merging or automatic OPTIONS must never answer in a facility's place.
    app.url_map.converters["anything"] = _Anything
    app.url_map.merge_slashes = False
    app.add_url_rule(
        "/<anything:_rest>", view_func=dispatch.handle, methods=dispatch.METHODS,
        provide_automatic_options=False, strict_slashes=False,
    )  # fmt: skip

    app.before_request(_start_record)
    app.after_request(_finish_response)
    app.register_error_handler(Exception, render_error)
    return app


class _Anything(BaseConverter):
    """Matches every path, including empty segments and decoded control characters."""

    regex = r"[\s\S]*"
    part_isolating = False


def _start_record() -> None:
    g.access = accesslog.AccessRecord(method=request.method)


def _finish_response(response: Response) -> Response:
    record = g.get("access")
    static = record is not None and record.route == "static"
    apply_security_headers(response.headers, cacheable=static)
    if record is not None:
        record.status = response.status_code
        if not response.is_streamed:  # streamed bodies are counted as they pass
            record.bytes_out = response.calculate_content_length() or 0
        response.call_on_close(record.emit)
    return response


def render_error(error: Exception) -> Response:
    """The one place errors become the contract's JSON shape: {"error": {"code", "message"}}."""
    if isinstance(error, HTTPException):
        # Werkzeug's own refusals (a method no rule allows, a body cut short) become the gateway's.
        error = _FROM_WERKZEUG.get(error.code, GatewayError)()
    elif not isinstance(error, GatewayError):
        # Only the type: messages of upstream and library errors quote URLs, which hold tokens.
        accesslog.event("internal_error", logging.ERROR, error=type(error).__name__)
        error = GatewayError()
    body = json.dumps({"error": {"code": error.code, "message": error.message}})
    return Response(body, status=error.status, mimetype="application/json", headers=error.headers)


_FROM_WERKZEUG = {400: BadRequest, 404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}

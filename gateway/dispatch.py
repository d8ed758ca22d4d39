"""The one request path: parse the target, find the facility, forward, stream the answer back."""

import json
from typing import TYPE_CHECKING

from flask import Response
from werkzeug.wsgi import get_input_stream

from . import paths, proxy
from .accesslog import AccessRecord
from .errors import BadRequest, FacilityUnavailable, MethodNotAllowed, NotFound, PayloadTooLarge
from .headers import downstream_response_headers, upstream_request_headers

if TYPE_CHECKING:
    from . import Gateway

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Seconds a client should wait before retrying a facility its operator has stopped.
STOPPED_RETRY_AFTER = 30


def handle(gateway: "Gateway", environ: dict, record: AccessRecord) -> Response:
    """Answer one request, routed on its raw target, or raise the error to answer with."""
    if record.method not in METHODS:
        raise MethodNotAllowed()
    config = gateway.config
    target = paths.parse_target(paths.raw_target(environ))
    host = environ.get("HTTP_HOST") or _server_host(environ)
    if not paths.valid_host(host):
        raise BadRequest("The Host header is not valid.")

    slug = paths.host_slug(host, config["DOMAIN"])
    if slug is not None:
        prefix, rest = "", target.segments
    else:
        if target.segments == ("healthz",) and not target.trailing_slash:
            record.quiet = True  # probed every few seconds: logging it would drown real requests
            return _json({"status": "ok"}, 200)
        if len(target.segments) < 2 or target.segments[0] != "f":
            raise NotFound()
        slug, rest = target.segments[1], target.segments[2:]
        prefix = f"/f/{slug}"
        if not rest and not target.trailing_slash:
            # Relative links on the facility's pages only resolve under the trailing slash.
            return _redirect(record.method, target.with_query(prefix + "/"))

    route = gateway.routes.get(slug)
    if route is None:
        raise NotFound("No facility with this name.")
    record.facility = slug
    record.route = paths.route_category(rest)
    if not route.running:
        raise FacilityUnavailable(retry_after=STOPPED_RETRY_AFTER)

    body = _request_body(environ, config["MAX_BODY"], record)
    headers = upstream_request_headers(
        environ,
        client_ip=environ.get("REMOTE_ADDR", ""),
        scheme=environ.get("wsgi.url_scheme", "https"),
        host=host,
        prefix=prefix,
    )
    upstream = proxy.forward(
        gateway.upstreams.channel(route.upstream),
        record.method,
        route.upstream + target.with_query(target.path(rest)),
        headers,
        body,
        (config["CONNECT_TIMEOUT"], config["READ_TIMEOUT"]),
        record,
    )
    # Not direct_passthrough: werkzeug then closes the body and runs the access-log hook even when
    # the body is never sent (HEAD, 204, 304) or the client goes away mid-stream.
    response = Response(upstream.body, status=upstream.status)
    response.headers.clear()
    for name, value in downstream_response_headers(upstream.headers):
        if name.lower() == "location":
            value = _rewrite_location(value, route.upstream, prefix)
        response.headers.add(name, value)
    return response


def _request_body(
    environ: dict, limit: int, record: AccessRecord
) -> bytes | proxy.CountingBody | None:
    """The client's body, refused up front when its declared length is over the limit."""
    declared = environ.get("CONTENT_LENGTH")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared:
        if not declared.isdigit():
            raise BadRequest("The Content-Length header is not valid.")
        length = int(declared)
        if length > limit:
            raise PayloadTooLarge()
        if length == 0:
            return None
        stream = get_input_stream(environ)
        if length <= proxy.SMALL_BODY:
            data = _read_exactly(stream, length)
            record.bytes_in = length
            return data
        return proxy.CountingBody(stream, limit, length, record)
    if chunked:
        return proxy.CountingBody(get_input_stream(environ), limit, None, record)
    return None


def _read_exactly(stream, length: int) -> bytes:
    # A raw stream may return less than asked for; only its end (b"") means the client stopped.
    parts, missing = [], length
    while missing:
        part = stream.read(missing)
        if not part:
            raise BadRequest("The request body ended early.")
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _rewrite_location(location: str, upstream: str, prefix: str) -> str:
    """Map a redirect to the facility's internal origin back onto its public prefix."""
    if location.startswith(upstream + "/") or location == upstream:
        return prefix + location[len(upstream) :] or "/"
    return location


def _server_host(environ: dict) -> str:
    return f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}".rstrip(":")


def _json(document: dict, status: int) -> Response:
    body = json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n"
    return Response(body, status=status, mimetype="application/json")


def _redirect(method: str, location: str) -> Response:
    status = 301 if method in ("GET", "HEAD") else 308
    return Response(status=status, headers={"Location": location})

"""Header policy: what is forwarded to a facility, and what every response carries back."""

from collections.abc import Iterable

from werkzeug.datastructures import Headers

# RFC 9110 section 7.6.1 plus the legacy ones proxies still meet; they describe one connection only.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway alone: a client could otherwise claim another address, scheme, host or prefix.
# Expect is answered by the gateway's server; Host and Content-Length are set for the upstream hop.
_NEVER_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "expect",
        "forwarded",
        "x-real-ip",
        "x-original-url",
        "x-rewrite-url",
    }
)
# Upstream response headers the gateway (or its HTTP server) replaces with its own.
_RESPONSE_DROPPED = frozenset({"server", "date", "x-powered-by", "strict-transport-security"})

HSTS = "max-age=63072000; includeSubDomains"
BASELINE_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
NO_STORE = "no-store"


def connection_tokens(value: str | None) -> set[str]:
    """Header names a Connection header declares hop-by-hop."""
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def upstream_request_headers(
    environ: dict, *, client_ip: str, scheme: str, host: str, prefix: str
) -> dict[str, str]:
    """The headers to send to the facility, built from the client's WSGI environ."""
    dropped = HOP_BY_HOP | connection_tokens(environ.get("HTTP_CONNECTION"))
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key == "CONTENT_TYPE" and value:
            name = "content-type"
        else:
            continue
        if name in dropped or name in _NEVER_FORWARDED or name.startswith("x-forwarded-"):
            continue
        headers[name.title()] = value
    headers["X-Forwarded-For"] = client_ip
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Host"] = host
    if prefix:
        headers["X-Forwarded-Prefix"] = prefix
    return headers


def downstream_response_headers(raw_headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The facility's response headers minus hop-by-hop ones; repeated ones (Set-Cookie) kept."""
    pairs = list(raw_headers)
    connection = ",".join(v for k, v in pairs if k.lower() == "connection")
    dropped = HOP_BY_HOP | connection_tokens(connection) | _RESPONSE_DROPPED
    return [(k, v) for k, v in pairs if k.lower() not in dropped]


def apply_security_headers(headers: Headers, *, cacheable: bool = False) -> None:
    """Add the gateway's security headers to a response, whoever produced it.

    `cacheable` is true only for static assets; then an upstream Cache-Control that allows caching
    is kept. Everything else (API, conversation pages, errors) is never stored by any cache.
    """
    headers["Strict-Transport-Security"] = HSTS
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    csp = headers.get("Content-Security-Policy")
    headers["Content-Security-Policy"] = _merge_csp(csp) if csp else BASELINE_CSP
    upstream_cache = headers.get("Cache-Control", "")
    if not (cacheable and upstream_cache and "no-store" not in upstream_cache.lower()):
        headers["Cache-Control"] = NO_STORE


def _merge_csp(policy: str) -> str:
    """Keep the facility's own policy, adding the baseline directives it does not set itself.

    Adding a directive the policy lacks only narrows it (default-src is the fallback for directives
    that are absent), so the result is at least as strict as both the facility's policy and ours.
    """
    present = {d.strip().split(" ", 1)[0].lower() for d in policy.split(";") if d.strip()}
    extra = [
        d
        for d in ("default-src 'self'", "frame-ancestors 'none'")
        if d.split(" ", 1)[0] not in present
    ]
    return "; ".join([policy.strip().rstrip(";")] + extra) if extra else policy

"""Header handling: X-Forwarded-* set by the gateway alone, hop-by-hop removed, security headers."""

import pytest

from devsupport import localhost
from gateway.nginx import CSP

from .rawhttp import raw_request

SECURITY_HEADERS = {
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
}


def test_client_forwarding_headers_are_replaced_by_the_gateways(gateway, upstreams):
    status, _, body = raw_request(
        gateway.port,
        "/api/v1/conversations",
        host="a.localhost",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Prefix": "/f/b",
            "X-Forwarded-Port": "1",
            "Forwarded": "for=203.0.113.9;host=evil.example",
            "X-Real-IP": "203.0.113.9",
            "X-Original-URL": "/f/b/api",
        },
    )
    assert status == 200
    seen = __import__("json").loads(body)["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    # The facility builds its links from its configured origin: no client's host or prefix.
    for dropped in (
        "forwarded",
        "x-real-ip",
        "x-original-url",
        "x-forwarded-port",
        "x-forwarded-host",
        "x-forwarded-prefix",
    ):
        assert dropped not in seen


def test_hop_by_hop_request_headers_are_not_forwarded(gateway, upstreams):
    _, _, body = raw_request(
        gateway.port,
        "/api",
        host="a.localhost",
        headers={
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "Upgrade": "websocket",
            "Authorization": "Bearer end-to-end",
            "Cookie": "session=kept",
        },
    )
    seen = __import__("json").loads(body)["headers"]
    for hop in ("keep-alive", "te", "proxy-authorization", "upgrade"):
        assert hop not in seen
    assert seen["authorization"] == "Bearer end-to-end"
    assert seen["cookie"] == "session=kept"
    assert seen["host"] == "facility"


def test_hop_by_hop_response_headers_are_removed(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/hop")
    headers = {k.lower() for k in response.headers}
    for hop in ("keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert hop not in headers
    assert "leaky" not in response.headers.get("Server", "")
    assert response.headers["X-End-To-End"] == "kept"
    assert response.raw.headers.getlist("Set-Cookie") == [
        "a=1; Secure; HttpOnly",
        "b=2; Secure; HttpOnly",
    ]


def test_the_gateways_csp_always_applies_and_the_facilitys_comes_beside_it(gateway, upstreams):
    # Browsers enforce every policy they get: the facility's can only narrow the gateway's.
    response = localhost.get(f"{gateway.origin('a')}/csp")
    policies = response.raw.headers.getlist("Content-Security-Policy")
    assert sorted(policies) == sorted([CSP, "default-src 'none'; img-src 'self'"])
    assert "frame-ancestors 'none'" in CSP and "object-src 'none'" in CSP
    # Frames: only blob: (the pages' preview of a PDF chosen for upload), never another origin.
    assert "frame-src blob:;" in CSP


def test_a_facility_cannot_loosen_the_csp(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/loose-csp")
    policies = response.raw.headers.getlist("Content-Security-Policy")
    assert sorted(policies) == sorted(
        [CSP, "default-src *; script-src * 'unsafe-inline' 'unsafe-eval'"]
    )


def test_a_cookie_for_other_hosts_never_reaches_the_browser_intact(gateway, upstreams):
    # A Domain attribute (the parent domain would reach every facility) gets a domain no
    # browser accepts from this origin, so the browser drops the cookie; all are made Secure.
    response = localhost.get(f"{gateway.origin('a')}/domain-cookies")
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 4
    assert all("Secure" in cookie for cookie in cookies)
    assert all("localhost" not in cookie.lower() for cookie in cookies)
    assert sum("domain=refused.invalid" in cookie.lower() for cookie in cookies) == 3
    assert "__Host-own=1; Path=/; Secure; HttpOnly; SameSite=Strict" in cookies


@pytest.mark.parametrize(
    ("method", "host", "path", "status"),
    [
        ("GET", "a.localhost", "/api/v1/conversations", 200),
        ("GET", "a.localhost", "/static/app.css", 200),
        ("GET", "a.localhost", "/p/some-token", 200),
        ("GET", "a.localhost", "/redirect", 302),
        ("GET", "localhost", "/f/a", 301),
        ("GET", "zz.localhost", "/", 404),
        ("GET", "a.localhost", "/%2e%2e/b", 400),
        ("GET", "resting.localhost", "/", 503),
        ("GET", "dead.localhost", "/", 503),
        ("GET", "gone.localhost", "/", 404),
        ("GET", "halted.localhost", "/", 503),
        ("TRACE", "a.localhost", "/", 405),
        ("GET", "localhost", "/healthz", 200),
        ("GET", "evil.example", "/", 421),
    ],
)
def test_every_response_carries_the_security_headers(
    gateway, upstreams, method, host, path, status
):
    got, headers, _ = raw_request(gateway.port, path, method=method, host=host)
    assert got == status
    assert SECURITY_HEADERS <= set(headers)
    assert "max-age=63072000" in headers["strict-transport-security"]
    assert "includeSubDomains" in headers["strict-transport-security"]
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    if "/static/" not in path:
        assert headers["cache-control"] == "no-store"


def test_api_responses_are_never_cacheable_even_if_the_facility_says_so(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/api/v1/cacheable")
    assert response.headers["Cache-Control"] == "no-store"


def test_static_assets_keep_the_facilitys_cache_policy(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/static/app.css")
    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_redirect_to_the_internal_origin_becomes_a_path_on_the_facilitys_origin(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/redirect", allow_redirects=False)
    assert response.headers["Location"] == "/login?next=1"
    assert "facility" not in response.headers["Location"]

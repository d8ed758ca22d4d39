"""Header handling: X-Forwarded-* set by the gateway alone, hop-by-hop removed, security headers."""

import pytest
import requests

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
        "/f/a/api/v1/conversations",
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
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-prefix"] == "/f/a"
    for dropped in ("forwarded", "x-real-ip", "x-original-url", "x-forwarded-port"):
        assert dropped not in seen


def test_hop_by_hop_request_headers_are_not_forwarded(gateway, upstreams):
    _, _, body = raw_request(
        gateway.port,
        "/f/a/api",
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
    response = requests.get(f"{gateway.url}/f/a/hop")
    headers = {k.lower() for k in response.headers}
    for hop in ("keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert hop not in headers
    assert "leaky" not in response.headers.get("Server", "")
    assert response.headers["X-End-To-End"] == "kept"
    assert response.raw.headers.getlist("Set-Cookie") == [
        "a=1; Secure; HttpOnly",
        "b=2; Secure; HttpOnly",
    ]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/f/a/api/v1/conversations", 200),
        ("GET", "/f/a/static/app.css", 200),
        ("GET", "/f/a/p/some-token", 200),
        ("GET", "/f/a/redirect", 302),
        ("GET", "/f/a", 301),
        ("GET", "/f/zz/", 404),
        ("GET", "/f/a/%2e%2e/b", 400),
        ("GET", "/f/resting/", 503),
        ("GET", "/f/dead/", 503),
        ("GET", "/f/gone/", 404),
        ("GET", "/f/halted/", 503),
        ("TRACE", "/f/a/", 405),
        ("GET", "/healthz", 200),
    ],
)
def test_every_response_carries_the_security_headers(gateway, upstreams, method, path, status):
    got, headers, _ = raw_request(gateway.port, path, method=method)
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
    response = requests.get(f"{gateway.url}/f/a/api/v1/cacheable")
    assert response.headers["Cache-Control"] == "no-store"


def test_static_assets_keep_the_facilitys_cache_policy(gateway, upstreams):
    response = requests.get(f"{gateway.url}/f/a/static/app.css")
    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_facility_csp_is_kept_and_completed(gateway, upstreams):
    csp = requests.get(f"{gateway.url}/f/a/csp").headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; img-src 'self'")
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" not in csp  # the facility's stricter default stays


def test_redirect_to_the_internal_origin_is_mapped_to_the_prefix(gateway, upstreams):
    response = requests.get(f"{gateway.url}/f/a/redirect", allow_redirects=False)
    assert response.headers["Location"] == "/f/a/login?next=1"
    assert "facility" not in response.headers["Location"]

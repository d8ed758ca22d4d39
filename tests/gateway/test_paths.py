"""Hosts and paths: each facility only at its own origin, nothing for a host it is not, no
request for one facility ever reaching another."""

import pytest

from gateway.targets import refused

from .rawhttp import raw_request

# Targets that must be refused before any facility is contacted.
HOSTILE = [
    "/../b/api/v1/conversations",
    "/./api",
    "/%2e%2e/b/api",
    "/%2E%2E/b",
    "/.%2e/b",
    "/%2e/api",
    "/..;/b/api",
    "/api/..%3b/..%3b/b",
    "/api%2f..%2f..%2fb",
    "/api%2F..%2F..%2Fb",
    "/f/a%2fb/api",
    "/..%5cb",
    "/..%5Cb/api",
    "/..\\b",
    "/%252e%252e/b",
    "/%252f",
    "/%00/api",
    "/api%00.json",
    "/f/b%00/api",
    "/%c0%ae%c0%ae/b",
    "/%ff",
    "/%ZZ",
    "/%",
    "/%2",
    "/%u002e%u002e/b",
    "/%0d%0aX-Injected:%20yes",
    "/%09",
    "/%7f",
    "/x#frag",
    "//../b",
    "http://127.0.0.1/f/b/api",
    "*",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_is_refused_by_the_patterns_nginx_applies(target):
    assert refused(target.encode()) or not target.startswith("/")


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_never_reaches_a_facility(gateway, upstreams, target):
    status, headers, body = raw_request(gateway.port, target, host="a.localhost")
    assert status == 400
    assert upstreams["a"].seen == [] and upstreams["b"].seen == []


@pytest.mark.parametrize(
    ("target", "upstream_path"),
    [
        ("/api/v1/conversations", "/api/v1/conversations"),
        ("/", "/"),
        ("/api//v1///conversations/", "/api/v1/conversations/"),
        ("//api", "/api"),
        ("/%61pi", "/api"),
        ("/files/report%20final.pdf", "/files/report%20final.pdf"),
        ("/%E2%82%AC", "/%E2%82%AC"),
        ("/%ef%bc%8e%ef%bc%8e/b", "/%EF%BC%8E%EF%BC%8E/b"),
        ("/...", "/..."),
        ("/api?x=../../b&y=%2F%5C", "/api?x=../../b&y=%2F%5C"),
        ("/f/b/api", "/f/b/api"),  # on a facility's origin /f/ is just its own path
    ],
)
def test_allowed_target_reaches_its_own_facility_in_canonical_form(
    gateway, upstreams, target, upstream_path
):
    status, _, _ = raw_request(gateway.port, target, host="a.localhost")
    assert status == 200
    assert upstreams["a"].seen == [("GET", upstream_path)]
    assert upstreams["b"].seen == []


def test_host_names_are_case_insensitive(gateway, upstreams):
    status, _, _ = raw_request(gateway.port, "/api", host="A.LocalHost")
    assert status == 200
    assert upstreams["a"].seen == [("GET", "/api")]


@pytest.mark.parametrize(("host", "target"), [("zz.localhost", "/"), ("localhost", "/f/zz/x")])
def test_unknown_facility_is_not_found(gateway, upstreams, host, target):
    status, _, body = raw_request(gateway.port, target, host=host)
    assert status == 404
    assert b'"not_found"' in body


@pytest.mark.parametrize("target", ["/x/a/", "/", "/api/v1/conversations"])
def test_the_gateways_own_name_serves_no_facility(gateway, upstreams, target):
    status, _, body = raw_request(gateway.port, target, host="localhost")
    assert status == 404
    assert b'"not_found"' in body
    assert upstreams["a"].seen == [] and upstreams["b"].seen == []


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "a.localhost.evil.example",
        "a.b.localhost",
        "-a.localhost",
        "a_b.localhost",
        "127.0.0.1",
        "facility",
    ],
)
def test_a_host_the_gateway_does_not_serve_is_misdirected(gateway, upstreams, host):
    status, _, body = raw_request(gateway.port, "/api/v1/conversations", host=host)
    assert status == 421
    assert b'"misdirected_request"' in body
    assert upstreams["a"].seen == [] and upstreams["b"].seen == []


@pytest.mark.parametrize(
    ("method", "target", "status", "location"),
    [
        ("GET", "/f/a", 301, "/"),
        ("GET", "/f/a?lang=de", 301, "/?lang=de"),
        ("GET", "/f/a/p/some-token?x=1&y=%2F", 301, "/p/some-token?x=1&y=%2F"),
        ("HEAD", "/f/a/files/report%20final.pdf", 301, "/files/report%20final.pdf"),
        ("GET", "/f/%61/api", 301, "/api"),
        ("GET", "//f//a//api", 301, "//api"),
        ("POST", "/f/a/api/v1/login", 308, "/api/v1/login"),
    ],
)
def test_an_old_facility_address_only_redirects_to_its_own_origin(
    gateway, upstreams, method, target, status, location
):
    got, headers, _ = raw_request(gateway.port, target, method=method, host="localhost")
    assert got == status
    assert headers["location"] == f"{gateway.origin('a')}{location}"
    assert upstreams["a"].seen == []


def test_facility_internal_paths_are_not_found(gateway, upstreams):
    status, _, _ = raw_request(gateway.port, "/_medcell/status", host="a.localhost")
    assert status == 404
    assert upstreams["a"].seen == []


def test_another_domain_serves_its_own_facility_hosts(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_DOMAIN="example.org")
    status, _, body = raw_request(gateway.port, "/api/v1/x", host="b.example.org")
    assert status == 200
    assert upstreams["b"].seen == [("GET", "/api/v1/x")]
    assert b"x-forwarded-prefix" not in body
    assert raw_request(gateway.port, "/api/v1/x", host="x.b.example.org")[0] == 421
    assert raw_request(gateway.port, "/api/v1/x", host="b.localhost")[0] == 421
    status, headers, _ = raw_request(gateway.port, "/f/b/x?y=1", host="example.org")
    assert (status, headers["location"]) == (301, f"https://b.example.org:{gateway.port}/x?y=1")

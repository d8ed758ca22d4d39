"""Path normalisation: no request for one facility ever reaches another or leaves its prefix."""

import pytest

from gateway.targets import refused

from .rawhttp import raw_request

# Targets that must be refused before any facility is contacted.
HOSTILE = [
    "/f/a/../b/api/v1/conversations",
    "/f/a/./api",
    "/f/a/%2e%2e/b/api",
    "/f/a/%2E%2E/b",
    "/f/a/.%2e/b",
    "/f/a/%2e/api",
    "/f/a/..;/b/api",
    "/f/a/api/..%3b/..%3b/b",
    "/f/a/api%2f..%2f..%2fb",
    "/f/a/api%2F..%2F..%2Fb",
    "/f/a%2fb/api",
    "/f/a/..%5cb",
    "/f/a/..%5Cb/api",
    "/f/a/..\\b",
    "/f/a/%252e%252e/b",
    "/f/a/%252f",
    "/f/a/%00/api",
    "/f/a/api%00.json",
    "/f/b%00/api",
    "/f/a/%c0%ae%c0%ae/b",
    "/f/a/%ff",
    "/f/a/%ZZ",
    "/f/a/%",
    "/f/a/%2",
    "/f/a/%u002e%u002e/b",
    "/f/a/%0d%0aX-Injected:%20yes",
    "/f/a/%09",
    "/f/a/%7f",
    "/f/a/x#frag",
    "/f/a//../b",
    "http://127.0.0.1/f/b/api",
    "*",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_is_refused_by_the_patterns_nginx_applies(target):
    assert refused(target.encode()) or not target.startswith("/")


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_target_never_reaches_a_facility(gateway, upstreams, target):
    status, headers, body = raw_request(gateway.port, target)
    assert status == 400
    assert upstreams["a"].seen == [] and upstreams["b"].seen == []


@pytest.mark.parametrize(
    ("target", "upstream_path"),
    [
        ("/f/a/api/v1/conversations", "/api/v1/conversations"),
        ("/f/a/", "/"),
        ("/f/a/api//v1///conversations/", "/api/v1/conversations/"),
        ("//f/a/api", "/api"),
        ("/f/%61/api", "/api"),
        ("/f/a/%61pi", "/api"),
        ("/f/a/files/report%20final.pdf", "/files/report%20final.pdf"),
        ("/f/a/%E2%82%AC", "/%E2%82%AC"),
        ("/f/a/%ef%bc%8e%ef%bc%8e/b", "/%EF%BC%8E%EF%BC%8E/b"),
        ("/f/a/...", "/..."),
        ("/f/a/api?x=../../b&y=%2F%5C", "/api?x=../../b&y=%2F%5C"),
    ],
)
def test_allowed_target_reaches_its_own_facility_in_canonical_form(
    gateway, upstreams, target, upstream_path
):
    status, _, _ = raw_request(gateway.port, target)
    assert status == 200
    assert upstreams["a"].seen == [("GET", upstream_path)]
    assert upstreams["b"].seen == []


@pytest.mark.parametrize("target", ["/f/A/api", "/f/a.b/api", "/f/-a/api", "/f/zz/", "/x/a/", "/"])
def test_target_outside_any_known_facility_is_not_found(gateway, upstreams, target):
    status, _, body = raw_request(gateway.port, target)
    assert status == 404
    assert b'"not_found"' in body
    assert upstreams["a"].seen == [] and upstreams["b"].seen == []


def test_facility_root_without_slash_redirects_into_the_prefix(gateway):
    status, headers, _ = raw_request(gateway.port, "/f/a?lang=de")
    assert status == 301
    assert headers["location"] == "/f/a/?lang=de"


def test_facility_internal_paths_are_not_found(gateway, upstreams):
    status, _, _ = raw_request(gateway.port, "/f/a/_medcell/status")
    assert status == 404
    assert upstreams["a"].seen == []


def test_host_routing_forwards_without_prefix(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_DOMAIN="example.org")
    status, _, body = raw_request(gateway.port, "/api/v1/x", headers={"Host": "b.example.org"})
    assert status == 200
    assert upstreams["b"].seen == [("GET", "/api/v1/x")]
    assert b"x-forwarded-prefix" not in body
    status, _, _ = raw_request(gateway.port, "/api/v1/x", headers={"Host": "x.b.example.org"})
    assert status == 404

"""The real facility app behind the real gateway (host nginx): its links and cookies are its own
origin's, whatever a client claims (Host header injection into links and mails)."""

import json

import pytest

from devsupport import localhost
from devsupport.unix_http import unix_get

from .conftest import FACILITY_SLUG
from .rawhttp import raw_request

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

FORGED = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Prefix": "/phish",
    "Forwarded": "for=203.0.113.9;host=evil.example;proto=http",
    "X-Original-Host": "evil.example",
}


def staff_session(server, gateway):
    http = localhost.session(verify=gateway.cert)
    base = gateway.origin(FACILITY_SLUG)
    token = http.post(f"{base}/api/v1/login", json=server.admin, timeout=10).json()["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http, base


def test_a_forged_forwarded_host_never_changes_the_patient_link(facility_behind_gateway):
    server, gateway = facility_behind_gateway
    http, base = staff_session(server, gateway)
    created = http.post(f"{base}/api/v1/conversations", json={}, headers=FORGED, timeout=10)
    assert created.status_code == 201, created.text
    conversation = created.json()
    assert conversation["patient_url"] == f"{base}/p/{conversation['patient_token']}"


def test_a_host_it_does_not_serve_never_reaches_the_facility(facility_behind_gateway):
    server, gateway = facility_behind_gateway

    def requests_seen() -> int:
        return json.loads(unix_get(str(server.socket), "/_medcell/status")[1])["requests"]

    before = requests_seen()
    for host in ("evil.example", f"{FACILITY_SLUG}.localhost.evil.example", "127.0.0.1"):
        status, _, body = raw_request(gateway.port, "/api/v1/conversations", host=host)
        assert status == 421 and b'"misdirected_request"' in body
    assert requests_seen() == before


def test_the_facilitys_own_cookies_pass_as_host_only_cookies(facility_behind_gateway):
    server, gateway = facility_behind_gateway
    page = localhost.get(f"{gateway.origin(FACILITY_SLUG)}/login", verify=gateway.cert)
    assert page.status_code == 200
    (cookie,) = page.raw.headers.getlist("Set-Cookie")
    assert cookie.startswith("__Host-mc_pre=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=Strict"):
        assert attribute in cookie
    assert "domain" not in cookie.lower()

"""Gateway-originated errors: the right status, Retry-After where it helps, the contract's JSON."""

import http.client

import pytest
import requests

from devsupport import localhost

from .rawhttp import client_context

# A facility upload route: the gateway streams its body (every other body it reads whole).
UPLOAD = "/api/v1/conversations/1/attachments"


def https_connection(port: int) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=client_context())


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_unknown_facility_is_404(gateway):
    response = localhost.get(f"{gateway.origin('nowhere')}/api/v1/conversations")
    assert_error(response, 404, "not_found")


def test_stopped_facility_is_503_with_retry_after(gateway):
    response = localhost.get(f"{gateway.origin('resting')}/api/v1/conversations")
    assert_error(response, 503, "facility_unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_facility_not_answering_is_503_with_retry_after(gateway):
    response = localhost.post(f"{gateway.origin('dead')}/api/v1/login", json={"username": "x"})
    assert_error(response, 503, "facility_unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_facility_too_slow_is_504(gateway):
    assert_error(localhost.get(f"{gateway.origin('a')}/slow"), 504, "upstream_timeout")


def test_declared_body_over_the_limit_is_refused_up_front(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_MAX_BODY=str(1024 * 1024))
    conn = https_connection(gateway.port)
    conn.putrequest("POST", f"/f/a{UPLOAD}")
    conn.putheader("Content-Length", str(1024 * 1024 + 1))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()  # no body sent: the answer must not wait for it
    response = conn.getresponse()
    assert response.status == 413
    assert b'"payload_too_large"' in response.read()
    conn.close()
    assert upstreams["a"].seen == []


def test_chunked_body_over_the_limit_is_cut_off(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_MAX_BODY=str(1024 * 1024))

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = localhost.post(f"{gateway.origin('a')}{UPLOAD}", data=chunks())
    assert_error(response, 413, "payload_too_large")


def test_body_at_the_limit_passes(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_MAX_BODY=str(1024 * 1024))
    response = localhost.post(f"{gateway.origin('a')}{UPLOAD}", data=b"x" * 1024 * 1024)
    assert response.status_code == 200
    assert response.json()["body_size"] == 1024 * 1024


def test_invalid_content_length_is_400(gateway, upstreams):
    conn = https_connection(gateway.port)
    conn.putrequest("POST", "/f/a/api", skip_accept_encoding=True)
    conn.putheader("Content-Length", "-1")
    conn.endheaders()
    assert conn.getresponse().status == 400
    assert upstreams["a"].seen == []


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_unsupported_methods_are_405(gateway, upstreams, method):
    response = localhost.request(method, f"{gateway.origin('a')}/")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    assert upstreams["a"].seen == []


def test_bad_host_header_is_400(gateway, upstreams):
    response = localhost.get(f"{gateway.origin('a')}/", headers={"Host": "evil.example/../x"})
    assert_error(response, 400, "bad_request")
    assert upstreams["a"].seen == []


def test_too_many_logins_from_one_client_are_429_with_retry_after(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_LOGIN_RATE="1")
    statuses = []
    with localhost.session() as client:
        for _ in range(30):
            statuses.append(client.post(f"{gateway.origin('a')}/api/v1/login", json={}).status_code)
        refused = client.post(f"{gateway.origin('a')}/login", data={"u": "x"})
        other = client.get(f"{gateway.origin('a')}/api/v1/conversations")
    assert statuses[:10] == [200] * 10  # the burst passes
    assert 429 in statuses
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0
    assert other.status_code == 200  # other routes are not limited


def test_gateway_health(gateway):
    response = localhost.get(f"{gateway.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_upstream_breaking_off_a_response_is_not_passed_off_as_complete(gateway, upstreams):
    with pytest.raises(requests.exceptions.RequestException):
        _ = localhost.get(f"{gateway.origin('a')}/truncated").content

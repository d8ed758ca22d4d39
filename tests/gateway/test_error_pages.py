"""The gateway's own errors as a browser sees them: a short page in German and English.

API clients keep the contract's JSON (test_errors.py); a request whose Accept header prefers
HTML gets a readable page instead, with the same status and headers, and nothing internal.
"""

import http.client

import pytest
import requests

from devsupport import localhost
from gateway import errorpages

from .rawhttp import client_context, h2_request

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def assert_page(response: requests.Response, status: int, *internals: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    page = response.content.decode("utf-8")
    answer = errorpages.ANSWERS[status]
    assert page.startswith("<!DOCTYPE html>") and '<html lang="de">' in page
    for text in (answer.title_de, answer.text_de, answer.title_en, answer.text_en):
        assert text in page
    # The same protection as every other answer; nothing about the gateway or the request.
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    for internal in ("nginx", "gunicorn", "error", "{", *internals):
        assert internal not in page.lower()


def get(url: str, accept: str = BROWSER, **kwargs) -> requests.Response:
    return localhost.get(url, headers={"Accept": accept, **kwargs.pop("headers", {})}, **kwargs)


def test_unknown_facility_is_a_404_page(gateway):
    assert_page(get(f"{gateway.origin('nowhere')}/p/sometoken"), 404, "nowhere", "sometoken")


def test_unknown_path_outside_the_facilities_is_a_404_page(gateway):
    assert_page(get(f"{gateway.home}/wp-admin"), 404, "wp-admin")


def test_a_host_the_gateway_does_not_serve_is_a_421_page(gateway):
    assert_page(get(f"{gateway.url}/p/sometoken"), 421, "127.0.0.1", "sometoken")


def test_stopped_facility_is_a_503_page_with_retry_after(gateway):
    response = get(f"{gateway.origin('resting')}/login")
    assert_page(response, 503, "resting")
    assert response.headers["Retry-After"] == "30"


def test_facility_not_answering_is_a_503_page(gateway):
    response = get(f"{gateway.origin('dead')}/login")
    assert_page(response, 503, "dead")
    assert int(response.headers["Retry-After"]) > 0


def test_facility_too_slow_is_a_504_page(gateway):
    assert_page(get(f"{gateway.origin('a')}/slow"), 504)


def test_bad_request_is_a_400_page(gateway, upstreams):
    response = get(f"{gateway.origin('a')}/", headers={"Host": "evil.example/../x"})
    assert_page(response, 400, "evil")
    assert upstreams["a"].seen == []


def test_a_method_the_gateway_refuses_is_a_405_page_with_allow(gateway, upstreams):
    response = localhost.request("PROPFIND", f"{gateway.origin('a')}/", headers={"Accept": BROWSER})
    assert_page(response, 405)
    assert response.headers["Allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    assert upstreams["a"].seen == []


def test_a_body_over_the_limit_is_a_413_page(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_MAX_BODY=str(1024))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", gateway.port, timeout=5, context=client_context()
    )
    conn.putrequest("POST", "/f/a/p/token/attachment")
    conn.putheader("Content-Length", "4096")
    conn.putheader("Accept", BROWSER)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 413
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert errorpages.ANSWERS[413].text_de in body and errorpages.ANSWERS[413].text_en in body
    assert upstreams["a"].seen == []


def h1_request(port: int, target: str, method: str, headers: dict[str, str], *, host: str):
    """One HTTP/1.1 request with headers only; read up to the answer's length (the gateway may
    linger for the announced body before it closes)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=client_context())
    try:
        conn.putrequest(method, target, skip_host=True)
        conn.putheader("Host", f"{host}:{port}")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        answer = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
@pytest.mark.parametrize("path", ["/patient/messages", "/staff/password"], ids=["upload", "form"])
def test_a_body_over_every_limit_is_still_the_gateways_own_413_page(
    make_gateway, upstreams, path, http2
):
    # Over the gateway's limits (uploads' and other bodies' alike), as a browser sends it (over
    # HTTP/2 nginx re-checks the body's size at the page it rewrites to): the gateway's
    # bilingual page with its language declared, not nginx's bare English answer.
    gateway = make_gateway(MEDCELL_GATEWAY_MAX_BODY=str(64 * 1024))
    send = h2_request if http2 else h1_request
    status, headers, raw = send(
        gateway.port,
        path,
        "POST",
        {"Content-Length": str(8 * 1024 * 1024), "Accept": BROWSER},
        host="a.localhost",
    )
    body = raw.decode()
    assert status == 413
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert body.startswith("<!DOCTYPE html>") and '<html lang="de">' in body
    answer = errorpages.ANSWERS[413]
    assert answer.text_de in body and answer.text_en in body and "nginx" not in body
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
    assert upstreams["a"].seen == []


def test_too_many_logins_is_a_429_page_with_retry_after(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_LOGIN_RATE="1")
    with localhost.session() as browser:
        for _ in range(30):
            last = browser.post(
                f"{gateway.origin('a')}/login", data={"u": "x"}, headers={"Accept": BROWSER}
            )
    assert_page(last, 429)
    assert int(last.headers["Retry-After"]) > 0


@pytest.mark.parametrize("slug, status", [("gone", 404), ("halted", 503), ("broken", 503)])
def test_a_wake_the_supervisor_refuses_is_a_page_too(gateway, slug, status):
    response = get(f"{gateway.origin(slug)}/login")
    assert_page(response, status, slug)
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    "accept, html",
    [
        (BROWSER, True),  # Firefox's navigation
        ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", True),
        ("text/html", True),
        ("application/xhtml+xml, text/html;q=0.9", True),
        ("application/json", False),  # the pages' own fetch() calls, API clients
        ("application/json, text/html", False),
        ("text/html;q=0.5, application/json", False),
        ("*/*", False),  # curl, requests
        ("", False),
        ("image/png,*/*;q=0.8", False),
        ("text/html;q=0", False),
        ("application/xhtml+xml, text/html;q=0.0", False),
    ],
)
def test_the_page_goes_to_clients_that_prefer_html(gateway, accept, html):
    response = localhost.get(f"{gateway.origin('nowhere')}/", headers={"Accept": accept})
    assert response.status_code == 404
    assert errorpages.wants_html(accept) is html  # the activator decides the same way
    if html:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    else:
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "not_found"


def test_the_facilitys_own_answers_pass_unchanged(gateway):
    """Only the gateway's own errors become pages: a facility's 405 keeps its body and Allow."""
    response = get(f"{gateway.origin('a')}/not-allowed")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.json()["upstream"] == "a"


def test_every_page_is_a_valid_nginx_string_without_internals():
    for status in errorpages.ANSWERS:
        page = errorpages.html_page(status)
        assert errorpages.nginx_string(page).startswith("'<!DOCTYPE html>")
        assert f"<small>{status}</small>" in page and "{" not in page


def test_an_upload_to_a_resting_facility_over_http2_is_the_503_page(gateway):
    # A body within the uploads' limit but over other bodies' limit: the 503 page it is
    # rewritten to must not re-check it (HTTP/2) and answer with nginx's bare 413 instead.
    status, headers, raw = h2_request(
        gateway.port,
        "/patient/messages",
        "POST",
        {"Content-Length": str(2 * 1024 * 1024), "Accept": BROWSER},
        host="resting.localhost",
    )
    assert status == 503, raw
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="de">' in raw.decode() and errorpages.ANSWERS[503].text_de in raw.decode()

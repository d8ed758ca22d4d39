"""In a real browser, one facility's pages cannot reach another's: own origins, host-only cookies.

A compromised facility (the fake upstream `a`) serves whatever it likes through the real gateway.
Chromium maps the test domain `medcell.test` (RFC 6761) to loopback, so the cookie rules are those
of a real operator domain: a cookie for the parent domain would reach every facility.
"""

import json

import pytest

from tests.web.conftest import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

DOMAIN = "medcell.test"


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                *CHROMIUM_ARGS,
                f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1,MAP {DOMAIN} 127.0.0.1",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway(MEDCELL_DOMAIN=DOMAIN)


@pytest.fixture
def browser(chromium):
    # The test certificate is self-signed: the browser is told so, as for the other browser tests.
    context = chromium.new_context(ignore_https_errors=True)
    yield context
    context.close()


def origin(gateway, slug: str) -> str:
    return f"https://{slug}.{DOMAIN}:{gateway.port}"


def seen_by(page, url: str) -> dict:
    """What the fake facility received for a top-level navigation to `url` (its echo)."""
    page.goto(url)
    return json.loads(page.locator("body").inner_text())["headers"]


def test_a_page_of_one_facility_cannot_read_another_facilitys_document(gateway, browser):
    page = browser.new_page()
    page.goto(f"{origin(gateway, 'a')}/echo")
    with page.expect_popup() as opened:
        page.evaluate("url => { window.other = window.open(url) }", f"{origin(gateway, 'b')}/p/x")
    opened.value.wait_for_load_state()
    read = page.evaluate(
        "() => { try { return window.other.document.body.innerText } catch (e) { return e.name } }"
    )
    assert read == "SecurityError"
    # Nor with its cookies from a script: the answer is not the page's to read.
    fetched = page.evaluate(
        "url => fetch(url, {credentials: 'include'}).then(r => r.text()).catch(e => e.name)",
        f"{origin(gateway, 'b')}/api/v1/conversations",
    )
    assert fetched == "TypeError"


def test_cookies_a_facility_sets_for_its_neighbours_never_reach_the_browser(gateway, browser):
    page = browser.new_page()
    page.goto(f"{origin(gateway, 'a')}/toss/{DOMAIN}")
    kept = {(c["name"], c["domain"]) for c in browser.cookies()}
    assert kept == {("__Host-own", f"a.{DOMAIN}")}
    # The neighbour gets nothing of it: no tossed session, no cookie at all.
    assert "cookie" not in seen_by(page, f"{origin(gateway, 'b')}/echo")
    assert seen_by(page, f"{origin(gateway, 'a')}/echo")["cookie"] == "__Host-own=1"


def test_a_script_cannot_plant_a_host_only_session_cookie_in_another_facility(gateway, browser):
    # What the gateway cannot filter, a script's document.cookie, can still only set cookies
    # without the __Host- prefix for the parent domain: the facility reads none of those.
    page = browser.new_page()
    page.goto(f"{origin(gateway, 'a')}/echo")
    page.evaluate(
        """domain => {
            document.cookie = `__Host-mc_staff=planted; Domain=${domain}; Path=/; Secure`;
            document.cookie = `mc_staff=planted; Domain=${domain}; Path=/; Secure`;
        }""",
        DOMAIN,
    )
    cookie = seen_by(page, f"{origin(gateway, 'b')}/echo").get("cookie", "")
    assert "__Host-" not in cookie


def test_the_old_address_takes_the_browser_to_the_facilitys_own_origin(gateway, browser):
    page = browser.new_page()
    page.goto(f"https://{DOMAIN}:{gateway.port}/f/b/echo?x=1")
    assert page.url == f"{origin(gateway, 'b')}/echo?x=1"
    assert json.loads(page.locator("body").inner_text())["upstream"] == "b"


def test_a_host_the_gateway_does_not_serve_gets_a_421_page(gateway, browser):
    page = browser.new_page()
    response = page.goto(f"https://a.{DOMAIN}.evil.{DOMAIN}:{gateway.port}/")
    assert response.status == 421
    assert "Wrong address" in page.content()

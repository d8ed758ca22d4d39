"""Fixtures for the web pages: a facility app over temporary directories, browser-like clients."""

import re
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.facility.conftest import facility_app

ADMIN = ("chefin", "correct horse battery")
STAFF = ("pfleger", "another long secret")
BASE = "https://medcell.test"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.micros()


def make_praxis(tmp_path: Path, clock: FakeClock, **options):
    """The practice's app with an admin and a staff account; options go to its Config."""
    return facility_app(
        tmp_path,
        clock,
        "praxis",
        accounts=(ADMIN, STAFF),
        facility_name="Praxis Sonnenschein",
        public_url=f"{BASE}/",  # the origin its links start with
        **options,
    )


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock):
    app = make_praxis(tmp_path, clock)
    yield app
    app.extensions["medcell"].store.close()


def browser(app):
    """A client that talks HTTPS (Secure cookies) and accepts German, like a fresh browser."""
    client = app.test_client()
    client.environ_base.update({"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"})
    return client


def csrf_of(response) -> str:
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, "page has no CSRF field"
    return match.group(1)


def log_in(client, username: str, password: str):
    page = client.get(f"{BASE}/login")
    return client.post(
        f"{BASE}/login",
        data={"username": username, "password": password, "csrf": csrf_of(page)},
    )


@pytest.fixture
def staff(app):
    client = browser(app)
    assert log_in(client, *STAFF).status_code == 303
    return client


@pytest.fixture
def admin(app):
    client = browser(app)
    assert log_in(client, *ADMIN).status_code == 303
    return client


@pytest.fixture
def patient(app):
    return browser(app)


def open_conversation(staff, title: str = "Knie", pin: str = "") -> tuple[str, str]:
    """Open a conversation through the staff page; returns its id and the patient link path."""
    home = staff.get(f"{BASE}/staff/")
    page = staff.post(
        f"{BASE}/staff/conversations", data={"title": title, "pin": pin, "csrf": csrf_of(home)}
    )
    assert page.status_code == 201, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    link = re.search(r'id="link" type="text" readonly value="([^"]+)"', html).group(1)
    conv_id = re.search(r"/staff/c/([A-Za-z0-9_-]{22})", html).group(1)
    return conv_id, link.removeprefix(BASE)


@pytest.fixture
def client_api(app):
    """A plain API client and a staff bearer header."""
    client = app.test_client()
    token = client.post("/api/v1/login", json={"username": STAFF[0], "password": STAFF[1]})
    return client, {"Authorization": f"Bearer {token.json['token']}"}


# Browser tests (marked `browser`): real Chromium against a running facility.

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver per session: its sync API cannot run twice in one process at once,
    so a module that needs a browser of its own launches it from this driver."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    browser = playwright_driver.chromium.launch(
        executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def close_each_tests_pages(request):
    """A test's browser contexts are closed when it ends: an open page keeps its renderer process
    alive and keeps polling its facility for news until the browser closes at the session's end."""
    browser = request.getfixturevalue("chromium") if "chromium" in request.fixturenames else None
    yield
    if browser is not None:
        for context in list(browser.contexts):
            context.close()


# The gateway variant needs Docker as well: `pytest --browser` alone runs the local one.
@pytest.fixture(scope="module", params=[pytest.param("gateway", marks=pytest.mark.docker), "local"])
def site(request, tmp_path_factory):
    """A facility to browse: through the real gateway and containers over TLS, or locally."""
    from . import sites

    if request.param == "gateway":
        generator = sites.gateway_site(request.getfixturevalue("shared_installation"))
    else:
        generator = sites.local_site(tmp_path_factory.mktemp("site-local"))
    site = next(generator)
    site.name = request.param
    yield site
    generator.close()

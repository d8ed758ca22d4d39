"""Staff sign-in in real Chromium: passkeys with Chromium's virtual authenticator (DevTools'
WebAuthn domain), TOTP with codes computed here, on a desktop and a phone viewport.

The facility's real server sits behind the real gateway at its own origin over TLS (a passkey's
relying party is that origin). Chromium trusts the throwaway certificate by its key
(--ignore-certificate-errors-spki-list), as a browser trusts a real one: WebAuthn refuses pages
with certificate errors.
"""

import base64
import hashlib
import re
import subprocess

import pyotp
import pytest

from devsupport import FacilityServer
from devsupport.gateway import GatewayServer, write_routes

from .conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.process]

SLUG = "signin"
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


def spki_hash(cert: str) -> str:
    """The base64 SHA-256 of a certificate's public key, as Chromium's SPKI list wants it."""
    public = subprocess.run(
        ["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
        check=True,
        capture_output=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=public,
        check=True,
        capture_output=True,
    ).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The facility's server on its socket, the gateway in front at https://signin.localhost:P."""
    base = tmp_path_factory.mktemp("si")
    gateway = GatewayServer(base, MEDCELL_GATEWAY_WORKERS="1")
    gateway.make_tls_files()
    write_routes(gateway.routes, {SLUG: "running"}, generation=1)
    socket = base / "run" / "facilities" / SLUG / "app.sock"
    origin = gateway.origin(SLUG)
    server = FacilityServer(base, SLUG, socket=socket, tcp=False, MEDCELL_PUBLIC_URL=f"{origin}/")
    admin = server.create_admin()
    server.start()
    gateway.start(generation=1)
    logs = [server.log_path, gateway.log_path]
    yield {"origin": origin, "admin": admin, "cert": gateway.cert, "logs": logs}
    gateway.stop()
    server.stop()


@pytest.fixture(scope="module")
def chromium(site, playwright_driver):
    """A browser of this module's own: it trusts the throwaway gateway's certificate (WebAuthn
    refuses pages with certificate errors). Launched from the session's one driver."""
    browser = playwright_driver.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            *CHROMIUM_ARGS,
            f"--ignore-certificate-errors-spki-list={spki_hash(site['cert'])}",
        ],
    )
    yield browser
    browser.close()


def new_page(chromium, viewport: str, authenticator: bool = True):
    context = chromium.new_context(locale="de-DE", viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    if authenticator:
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        found = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        page.cdp, page.authenticator = cdp, found["authenticatorId"]
    return page


def credentials(page) -> list[dict]:
    return page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator})[
        "credentials"
    ]


def make_account(chromium, site, username: str) -> str:
    """A new staff account made on the admin page; returns its generated password."""
    page = new_page(chromium, "desktop", authenticator=False)
    password_login(page, site, site["admin"]["username"], site["admin"]["password"])
    page.goto(f"{site['origin']}/staff/admin")
    page.locator("#username").fill(username)
    page.get_by_role("button", name="Konto anlegen").click()
    password = page.locator("#generated").input_value()
    page.context.close()
    return password


def password_login(page, site, username: str, password: str) -> None:
    page.goto(f"{site['origin']}/login")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort", exact=True).fill(password)
    page.get_by_role("button", name="Anmelden", exact=True).click()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_passkey_is_added_then_signs_in_without_a_password(chromium, site, viewport):
    username = f"pk-{viewport}"
    password = make_account(chromium, site, username)
    page = new_page(chromium, viewport)
    password_login(page, site, username, password)
    page.wait_for_url(re.compile(r"/staff/$"))
    page.goto(f"{site['origin']}/staff/security")
    page.get_by_label("Name des Passkeys").fill("Empfangstresen")
    page.get_by_role("button", name="Passkey hinzufügen").click()
    page.get_by_text("Empfangstresen", exact=True).wait_for()
    stored = credentials(page)
    assert len(stored) == 1 and stored[0]["rpId"] == f"{SLUG}.localhost"
    assert stored[0]["isResidentCredential"]

    # Signed out, the same device signs in with the passkey alone.
    page.get_by_role("button", name=re.compile(r"^Abmelden")).click()
    page.wait_for_url(re.compile(r"/login$"))
    page.get_by_role("button", name="Mit Passkey anmelden").click()
    page.wait_for_url(re.compile(r"/staff/$"))
    assert credentials(page)[0]["signCount"] >= 2

    # With a passkey, the password alone leads to the second step, which the passkey passes.
    page.get_by_role("button", name=re.compile(r"^Abmelden")).click()
    password_login(page, site, username, password)
    page.wait_for_url(re.compile(r"/login/verify$"))
    page.get_by_role("button", name="Mit Passkey anmelden").click()
    page.wait_for_url(re.compile(r"/staff/$"))
    assert not page.problems, page.problems
    page.context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_totp_is_set_up_and_its_codes_sign_in(chromium, site, viewport):
    username = f"otp-{viewport}"
    password = make_account(chromium, site, username)
    page = new_page(chromium, viewport, authenticator=False)
    password_login(page, site, username, password)
    page.wait_for_url(re.compile(r"/staff/$"))
    page.goto(f"{site['origin']}/staff/security")
    page.get_by_role("button", name="Authenticator-App einrichten").click()
    otp = pyotp.TOTP(page.locator("#totp-secret").input_value())
    page.get_by_label("Code aus der Authenticator-App").fill(otp.now())
    page.get_by_role("button", name="Einrichten bestätigen").click()
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 8

    page.get_by_role("button", name=re.compile(r"^Abmelden")).click()
    password_login(page, site, username, password)
    page.wait_for_url(re.compile(r"/login/verify$"))
    page.get_by_label("Code aus der Authenticator-App").fill("000000")
    page.get_by_role("button", name="Bestätigen").click()
    assert page.get_by_role("alert").inner_text().startswith("Der Code ist falsch")
    page.get_by_label("Code aus der Authenticator-App").fill(codes[0])
    page.get_by_role("button", name="Bestätigen").click()
    page.wait_for_url(re.compile(r"/staff/$"))
    assert not page.problems, page.problems
    logged = "".join(path.read_text() for path in site["logs"])
    secrets_shown = [otp.secret, *codes, *(c.replace("-", "") for c in codes)]
    assert not [s for s in secrets_shown if s in logged], "no secret in a log"
    page.context.close()

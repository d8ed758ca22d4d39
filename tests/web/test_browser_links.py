"""The patient's link in Chromium, on a desktop (1366×768) and a phone (390×844): the desk prints
the letter with its QR code, mails the same link again, makes a new link only after confirming,
and a patient who lost the link asks for it and gets the one answer for every address."""

import re

import pytest

from devsupport import FacilityServer
from medcell_common.origins import facility_origin

from .sites import Site
from .test_browser import goto, log_in, new_page, open_conversation, shot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A local facility whose installation has mail set up (the relay is not needed here)."""
    root = tmp_path_factory.mktemp("site-links")
    server = FacilityServer(root, "web", MEDCELL_FACILITY_NAME="Praxis am Park", MEDCELL_MAIL="on")
    login = server.create_admin()
    server.start(timeout=60)
    try:
        yield Site(
            server.url,
            login["username"],
            login["password"],
            lambda needles: [],
            lambda: 0,
            name="links",
            public_url=facility_origin("web"),
        )
    finally:
        server.stop()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_desk_prints_mails_and_renews_the_link(chromium, site, viewport):
    staff = new_page(chromium, site, viewport=viewport)
    log_in(staff, site)
    suffix = viewport["width"]
    link = open_conversation(staff, f"Überweisung {suffix}", pin="2580")

    # The letter: the practice, the steps, a QR code that fits the screen, the link itself.
    staff.get_by_role("link", name="Brief mit QR-Code drucken").click()
    staff.get_by_role("heading", name="Ihr Zugang zur Unterhaltung mit Praxis am Park").wait_for()
    qr = staff.locator(".letter svg").bounding_box()
    assert qr["width"] >= 150 and qr["x"] + qr["width"] <= viewport["width"]
    assert link in staff.locator(".letter").inner_text()
    assert staff.get_by_role("button", name="Drucken").is_visible()
    assert staff.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(staff, site, f"letter-{suffix}")

    # The same link again by e-mail, from the conversation.
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_label("E-Mail-Adresse").fill("patientin@mail.example")
    staff.get_by_role("button", name="Link senden").click()
    staff.get_by_role("heading", name="Link wird gesendet").wait_for()

    # A new link only after its confirmation page; the patient's old link then ends.
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_role("link", name="Neuen Link erstellen …").click()
    staff.get_by_role("heading", name="Neuen Link erstellen?").wait_for()
    assert "enden sofort" in staff.locator("main").inner_text()
    staff.get_by_label("PIN (optional)").fill("1357")
    staff.get_by_role("button", name="Ja, neuen Link erstellen").click()
    fresh = staff.locator("#link").input_value()
    assert fresh != link
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.get_by_role("heading", name="Link ungültig").wait_for()
    assert patient.get_by_role("link", name="Link verloren? Neuen Link anfordern").is_visible()
    assert staff.problems == [] and patient.problems == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_patient_who_lost_the_link_gets_one_answer(chromium, site, viewport):
    patient = new_page(chromium, site, viewport=viewport)
    goto(patient, f"{site.base}/p/{'x' * 43}")
    patient.get_by_role("link", name="Link verloren? Neuen Link anfordern").click()
    patient.get_by_role("heading", name="Link verloren?").wait_for()
    patient.get_by_label("E-Mail-Adresse").fill("wer@mail.example")
    patient.get_by_role("button", name="Link anfordern").click()
    patient.get_by_role("heading", name="Anfrage erhalten").wait_for()
    assert "Wenn Ihre Praxis diese Adresse kennt, sendet sie Ihnen einen neuen Link." in (
        patient.locator("main").inner_text()
    )
    assert patient.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(patient, site, f"link-lost-{viewport['width']}")
    assert patient.problems == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_patient_starts_a_request_and_stays_signed_in(chromium, site, viewport):
    admin = new_page(chromium, site, viewport=DESKTOP)
    log_in(admin, site)
    goto(admin, f"{site.base}/staff/admin")
    admin.get_by_label("Anliegen über die Startseite annehmen").check()
    admin.get_by_label("Themen").fill("Rezept\nÜberweisung\nFrage zu Befunden")
    admin.locator("#intake-h ~ form").get_by_role("button", name="Speichern").click()
    admin.wait_for_url(re.compile(r"/staff/admin#intake-h$"))

    suffix = viewport["width"]
    patient = new_page(chromium, site, viewport=viewport)
    goto(patient, f"{site.base}/")
    patient.get_by_role("heading", name="Anliegen an die Praxis").wait_for()
    patient.get_by_label("Worum geht es?").select_option("Überweisung")
    patient.get_by_label("Ihr Name").fill(f"Erika Muster {suffix}")
    patient.get_by_label("Ihre Nachricht").fill(f"Ich brauche eine Überweisung {suffix}.")
    assert patient.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    patient.get_by_role("button", name="Anliegen senden").click()
    patient.get_by_role("heading", name="Ihr Anliegen ist angekommen").wait_for()
    assert "/p/" in patient.locator("#link").input_value()
    shot(patient, site, f"request-done-{suffix}")
    patient.get_by_role("link", name="Zur Unterhaltung").click()
    patient.locator("#messages").get_by_text(f"Überweisung {suffix}.").wait_for()

    # Stay signed in: with the session cookie gone, the device cookie brings the patient back.
    patient.get_by_role("button", name="30 Tage angemeldet bleiben").click()
    patient.get_by_text("Dieses Gerät bleibt angemeldet bis").wait_for()
    context = patient.context
    kept = [c for c in context.cookies() if c["name"] == "__Host-mc_device"]
    assert len(kept) == 1
    context.clear_cookies()
    context.add_cookies(kept)
    goto(patient, f"{site.base}/")
    patient.locator("#messages").get_by_text(f"Überweisung {suffix}.").wait_for()
    patient.get_by_role("button", name="Dieses Gerät abmelden").click()
    patient.get_by_role("button", name="30 Tage angemeldet bleiben").wait_for()

    # The team sees it in the inbox, waiting for a reply.
    goto(admin, f"{site.base}/staff/")
    row = admin.locator("#convs li", has_text=f"Erika Muster {suffix}")
    assert "wartet auf Antwort seit" in row.inner_text()
    assert admin.problems == [] and patient.problems == []

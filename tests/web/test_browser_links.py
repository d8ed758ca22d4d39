"""The patient's link in Chromium, on a desktop (1366×768) and a phone (390×844): the desk prints
the letter with its QR code, mails the same link again, makes a new link only after confirming,
and a patient who lost the link asks for it and gets the one answer for every address."""

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

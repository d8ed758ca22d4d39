"""The team inbox in Chromium, on a desktop (1366×768) and a phone (390×844): the staff land on
the list, see who waits for a reply and what they wrote, and reach the form by its button."""

import re

import pytest

from .test_browser import goto, log_in, new_page, shot

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def open_with_patient(staff, site, title: str, name: str) -> str:
    """Open a conversation through the inbox's button; returns the patient link."""
    goto(staff, f"{site.base}/staff/")
    staff.get_by_role("link", name="Neue Unterhaltung").click()
    staff.get_by_label("Titel (optional)").fill(title)
    staff.get_by_label("Name", exact=True).fill(name)
    staff.get_by_role("button", name="Unterhaltung eröffnen").click()
    return staff.locator("#link").input_value()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_inbox_is_the_first_screen_and_shows_who_waits(chromium, site, viewport):
    staff = new_page(chromium, site, viewport=viewport)
    log_in(staff, site)
    suffix = f"{viewport['width']}"
    link = open_with_patient(staff, site, f"Rezept {suffix}", f"Erika Muster {suffix}")
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    patient.get_by_label("Ihre Nachricht").fill(f"Ich brauche ein neues Rezept {suffix}.")
    patient.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("#messages").get_by_text(f"neues Rezept {suffix}").wait_for()

    goto(staff, f"{site.base}/staff/")
    row = staff.locator("#convs li", has_text=f"Erika Muster {suffix}")
    row.get_by_text(f"Ich brauche ein neues Rezept {suffix}.").wait_for()
    assert "Patient/in:" in row.inner_text()
    assert "wartet auf Antwort seit" in row.inner_text()
    assert "1 neu" in row.inner_text()
    # The newest row is whole on the first screen, the button to a new conversation above it.
    first = staff.locator("#convs li").first.bounding_box()
    assert first["y"] + first["height"] <= viewport["height"], f"the list starts at {first['y']}px"
    button = staff.get_by_role("link", name="Neue Unterhaltung").bounding_box()
    assert button["y"] + button["height"] <= first["y"]
    assert staff.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(staff, site, f"inbox-{suffix}")

    # Answered from the conversation: the row says "Sie" and no longer that the patient waits.
    row.get_by_role("link").click()
    staff.get_by_label("Ihre Nachricht").fill("Liegt morgen am Empfang.")
    staff.get_by_role("button", name="Senden", exact=True).click()
    staff.locator("#messages").get_by_text("Liegt morgen am Empfang.").wait_for()
    goto(staff, f"{site.base}/staff/?waiting=1")
    assert staff.locator("#convs li", has_text=f"Erika Muster {suffix}").count() == 0
    goto(staff, f"{site.base}/staff/")
    row = staff.locator("#convs li", has_text=f"Erika Muster {suffix}")
    assert "Sie: Liegt morgen am Empfang." in " ".join(row.inner_text().split())
    assert "wartet auf Antwort" not in row.inner_text()
    assert staff.problems == [] and patient.problems == []

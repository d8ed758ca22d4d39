"""In Chromium, on a desktop with JavaScript and on a phone without: a writer corrects and
deletes their own message; the other side sees the marks, on an open page without reloading."""

import pytest

from .test_browser import goto, log_in, new_page, open_conversation

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def newest(page):
    return page.locator("#messages > li").last


def test_correct_and_delete_on_desktop_and_phone(chromium, site):
    staff = new_page(chromium, site, viewport=DESKTOP)
    log_in(staff, site)
    link = open_conversation(staff, "Korrektur")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_label("Ihre Nachricht").fill("Termin am Dienstag um 8")
    staff.get_by_role("button", name="Senden", exact=True).click()
    message = newest(staff)
    assert "Möglich bis" in message.inner_text()
    message.get_by_role("link", name="Ändern oder löschen").click()
    assert "endgültig gelöscht" in staff.locator("main").inner_text()
    staff.get_by_label("Korrigierter Text").fill("Termin am Mittwoch um 8")
    staff.get_by_role("button", name="Korrektur senden").click()
    newest(staff).locator(".body").get_by_text("Termin am Mittwoch um 8").wait_for()
    assert "korrigiert" in newest(staff).inner_text()

    patient = new_page(chromium, site, viewport=PHONE, script=False)
    goto(patient, site.reach(link))
    seen = newest(patient)
    seen.locator(".body").get_by_text("Termin am Mittwoch um 8").wait_for()
    assert "Dienstag" not in seen.inner_text() and "korrigiert" in seen.inner_text()
    assert seen.get_by_text("Ändern oder löschen").count() == 0  # not the patient's

    patient.get_by_label("Ihre Nachricht").fill("Falsche Nachricht")
    patient.get_by_role("button", name="Senden", exact=True).click()
    own = newest(patient)
    own.locator(".body").get_by_text("Falsche Nachricht").wait_for()
    own.get_by_role("link", name="Ändern oder löschen").click()
    patient.get_by_role("button", name="Nachricht löschen").click()
    newest(patient).get_by_text("Diese Nachricht wurde von ihrem Absender gelöscht.").wait_for()
    # Without a script, the browser lands at the changed message, not at the page's top.
    box = newest(patient).bounding_box()
    assert -1 < box["y"] < PHONE["height"]  # scrolled to it (to a fraction of a pixel)

    # The staff's page, open all along, shows the deletion by its own polls: no reload.
    newest(staff).get_by_text("Diese Nachricht wurde von ihrem Absender gelöscht.").wait_for()
    assert "Falsche Nachricht" not in staff.locator("#messages").inner_text()
    assert staff.locator("#messages > li").count() == 2
    # The staff's own corrected message kept its mark and its place.
    first = staff.locator("#messages > li").first
    assert "Termin am Mittwoch um 8" in first.inner_text() and "korrigiert" in first.inner_text()
    staff.get_by_role("link", name="Auf neue Nachrichten prüfen").click()
    newest(staff).get_by_text("Diese Nachricht wurde von ihrem Absender gelöscht.").wait_for()
    assert "Falsche Nachricht" not in staff.locator("#messages").inner_text()
    assert staff.problems == [] and patient.problems == []

"""Names on messages in Chromium: a colleague's message arrives (live, without reloading) under
their display name, the reader's own under "Sie", and the patient sees the colleague's name."""

import re
import secrets

import pytest

from devsupport import localhost

from .test_browser import goto, log_in, new_page, no_reload_marker, still_same_document

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def test_messages_show_who_of_the_team_wrote_them(chromium, site):
    admin = site.api_login()
    login = f"tom{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(16)
    made = localhost.post(
        f"{site.base}/api/v1/staff",
        json={"username": login, "password": password, "display_name": "Pfleger Tom"},
        headers=admin,
        verify=False,
        timeout=30,
    )
    assert made.status_code == 201, made.text
    renamed = localhost.request(
        "PUT",
        f"{site.base}/api/v1/staff/{site.admin_user}/display-name",
        json={"display_name": "Dr. Anna Berg"},
        headers=admin,
        verify=False,
        timeout=30,
    )
    assert renamed.status_code == 200, renamed.text

    anna = new_page(chromium, site, viewport=DESKTOP)
    log_in(anna, site)
    goto(anna, f"{site.base}/staff/")
    anna.get_by_role("link", name="Neue Unterhaltung").click()
    anna.get_by_label("Titel (optional)").fill("Namen")
    anna.get_by_role("button", name="Unterhaltung eröffnen").click()
    link = anna.locator("#link").input_value()
    anna.get_by_role("link", name="Zur Unterhaltung").click()
    conv_url = anna.url
    anna.get_by_label("Ihre Nachricht").fill("Von Anna")
    anna.get_by_role("button", name="Senden", exact=True).click()
    anna.locator("#messages li", has_text="Von Anna").wait_for()

    tom = new_page(chromium, site, viewport=PHONE)
    goto(tom, f"{site.base}/login")
    tom.get_by_label("Benutzername").fill(login)
    tom.get_by_label("Passwort", exact=True).fill(password)
    tom.get_by_role("button", name="Anmelden", exact=True).click()
    tom.wait_for_url(re.compile(r"/staff/$"))
    goto(tom, conv_url)
    assert tom.locator("#messages li", has_text="Von Anna").locator(".who").inner_text() == (
        "Dr. Anna Berg"
    )
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    no_reload_marker(anna)
    no_reload_marker(patient)

    tom.get_by_label("Ihre Nachricht").fill("Von Tom")
    tom.get_by_role("button", name="Senden", exact=True).click()
    assert tom.locator("#messages li", has_text="Von Tom").locator(".who").inner_text() == "Sie"
    # Arrives live in Anna's page and the patient's, under Tom's name.
    anna_sees = anna.locator("#messages li", has_text="Von Tom").locator(".who")
    anna_sees.wait_for()
    assert anna_sees.inner_text() == "Pfleger Tom" and still_same_document(anna)
    patient_sees = patient.locator("#messages li", has_text="Von Tom").locator(".who")
    patient_sees.wait_for()
    assert patient_sees.inner_text() == "Pfleger Tom, Praxis am Park"
    assert still_same_document(patient)
    patient_has = patient.locator("#messages li", has_text="Von Anna").locator(".who")
    assert patient_has.inner_text() == "Dr. Anna Berg, Praxis am Park"
    assert anna.problems == [] and tom.problems == [] and patient.problems == []

"""Real Chromium: staff file a conversation into the record, the patient sees who looked."""

import io
import json
import re
import time

import pytest
from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import Error as PlaywrightError
from pypdf import PdfReader

from .test_browser import PHONE, goto, log_in, new_page, shot

pytestmark = pytest.mark.browser


def download(page, name: str) -> bytes:
    """Click a download link; again if Chromium cancelled it (see goto: Docker's interfaces)."""
    for attempt in range(3):
        with page.expect_download() as info:
            page.get_by_role("link", name=name).click()
        try:
            return open(info.value.path(), "rb").read()
        except PlaywrightError:
            if attempt == 2:
                raise
            time.sleep(1)


def test_staff_export_pdf_and_fhir_and_the_patient_sees_it(chromium, site, tmp_path):
    staff = new_page(chromium, site)
    log_in(staff, site)
    staff.get_by_role("link", name="Neue Unterhaltung").click()
    staff.get_by_label("Titel (optional)").fill("Befund Knie")
    staff.get_by_label("Name", exact=True).fill("Zoë Weißmüller")
    staff.get_by_label("Geburtsdatum").fill("1979-11-23")
    staff.get_by_label("Patientennummer der Praxis").fill("K-2207")
    staff.get_by_role("button", name="Unterhaltung eröffnen").click()
    link = staff.locator("#link").input_value()
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_text("Zoë Weißmüller · 1979-11-23 · #K-2207").wait_for()
    staff.get_by_label("Ihre Nachricht").fill("Die Werte sind unauffällig.")
    staff.get_by_role("button", name="Senden", exact=True).click()
    staff.locator("#messages").get_by_text("Die Werte sind unauffällig.").wait_for()
    shot(staff, site, "staff-records")

    text = "".join(
        p.extract_text()
        for p in PdfReader(io.BytesIO(download(staff, "Als PDF exportieren"))).pages
    )
    assert "Zoë Weißmüller" in text and "Die Werte sind unauffällig." in text
    bundle = json.loads(download(staff, "Als FHIR exportieren"))
    assert Bundle.model_validate(bundle).type == "collection"

    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    log = patient.locator(
        "section", has=patient.get_by_role("heading", name="Wer hat hineingesehen?")
    )
    user = site.admin_user
    log.get_by_text(f"{user} hat die Unterhaltung als PDF exportiert").first.wait_for()
    log.get_by_text(f"{user} hat die Unterhaltung als FHIR-Datensatz exportiert").first.wait_for()
    log.get_by_text(f"{user} hat die Unterhaltung geöffnet").first.wait_for()
    assert "Weißmüller" not in patient.content()  # the reference is the practice's, not shown
    shot(patient, site, "patient-access-log")
    assert staff.problems == [] and patient.problems == []

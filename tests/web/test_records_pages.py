"""The staff's records pages (reference, export, expiry reminder) and the patient's access log."""

import io
import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from .conftest import BASE, STAFF, csrf_of, log_in, open_conversation


def new_with_reference(staff, **fields) -> str:
    home = staff.get(f"{BASE}/staff/")
    data = {"title": "Schulter", "pin": "", "csrf": csrf_of(home)}
    data.update({f"ref_{k}": v for k, v in fields.items()})
    page = staff.post(f"{BASE}/staff/conversations", data=data)
    assert page.status_code == 201, page.get_data(as_text=True)
    return page.get_data(as_text=True).split("/staff/c/")[1][:22]


def test_reference_given_on_the_new_form_is_shown_on_the_conversation(staff):
    conv_id = new_with_reference(staff, name="Ayşe Kılıç", birth_date="1990-05-17", number="88")
    page = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "Ayşe Kılıç · 1990-05-17 · #88" in page
    assert f"/staff/c/{conv_id}/export?format=pdf" in page
    assert f"/staff/c/{conv_id}/export?format=fhir" in page


def test_invalid_reference_on_the_new_form_creates_nothing(staff):
    home = staff.get(f"{BASE}/staff/")
    page = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "X", "ref_birth_date": "1990-13-01", "csrf": csrf_of(home)},
    )
    assert page.status_code == 400
    assert "Patientenangabe ist ungültig" in page.get_data(as_text=True)
    assert "/staff/c/" not in staff.get(f"{BASE}/staff/").get_data(as_text=True)


def test_staff_edit_the_reference(staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    assert "Noch keine Patientenangabe" in page.get_data(as_text=True)
    saved = staff.post(
        f"{BASE}/staff/c/{conv_id}/reference",
        data={"ref_name": "Max Mustermann", "ref_number": "P-1", "csrf": csrf_of(page)},
    )
    assert saved.status_code == 303
    assert "Max Mustermann · #P-1" in staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/reference",
        data={"ref_birth_date": "gestern", "csrf": csrf_of(page)},
    )
    assert refused.status_code == 400


def test_reference_form_needs_csrf(staff):
    conv_id, _ = open_conversation(staff)
    response = staff.post(f"{BASE}/staff/c/{conv_id}/reference", data={"ref_name": "X"})
    assert response.status_code == 403


@pytest.mark.process
def test_staff_download_pdf_and_fhir_in_their_language(staff):
    conv_id = new_with_reference(staff, name="Jörg Weiß")
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"body": "Bitte kühlen und schonen.", "csrf": csrf_of(page)},
    )
    pdf = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "no-store"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Verlauf der Unterhaltung" in text and "Praxis Sonnenschein" in text
    assert "Bitte kühlen und schonen." in text and "Jörg Weiß" in text

    english = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf&lang=en")
    assert "Conversation record" in PdfReader(io.BytesIO(english.data)).pages[0].extract_text()

    fhir = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=fhir")
    assert fhir.mimetype == "application/fhir+json"
    Bundle.model_validate(json.loads(fhir.data))
    assert staff.get(f"{BASE}/staff/c/{conv_id}/export?format=doc").status_code == 400


@pytest.mark.process
def test_patient_page_shows_who_opened_and_exported(app, staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(f"{BASE}{link}")
    page = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "Wer hat hineingesehen?" in page and "Noch niemand aus dem Praxisteam." in page

    staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf")
    page = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "pfleger hat die Unterhaltung geöffnet" in page
    assert "pfleger hat die Unterhaltung als PDF exportiert" in page
    # The staff's own page carries no access log, and the patient's page no reference form.
    assert "Wer hat hineingesehen?" not in staff.get(f"{BASE}/staff/c/{conv_id}").get_data(
        as_text=True
    )
    assert "ref_name" not in page


def test_patient_page_never_shows_another_conversations_accesses(app, staff, patient):
    mine, link = open_conversation(staff, "Mine")
    other, _ = open_conversation(staff, "Other")
    staff.get(f"{BASE}/staff/c/{other}")
    patient.get(f"{BASE}{link}")
    page = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "Noch niemand aus dem Praxisteam." in page
    assert "geöffnet" not in page


def test_home_lists_conversations_expiring_within_a_day(staff, clock):
    old, _ = open_conversation(staff, "Alte Frage")
    clock.advance(6.5 * 86400)
    log_in(staff, *STAFF)  # the session of a week ago has ended
    open_conversation(staff, "Neue Frage")
    home = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    reminder = home.split('id="expiring-h"')[1].split("</section>")[0]
    assert "Alte Frage" in reminder and "Neue Frage" not in reminder
    assert f"/staff/c/{old}#records-h" in reminder


def test_no_reminder_when_nothing_expires_soon(staff):
    open_conversation(staff, "Frisch")
    assert 'id="expiring-h"' not in staff.get(f"{BASE}/staff/").get_data(as_text=True)


def test_too_long_for_a_pdf_says_so_on_the_page(staff, monkeypatch):
    from services.facility.core import records

    monkeypatch.setattr(records, "MAX_PDF_CHARS", 0)
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(f"{BASE}/staff/c/{conv_id}/messages", data={"body": "x", "csrf": csrf_of(page)})
    response = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf")
    assert response.status_code == 413
    assert "zu lang für ein PDF" in response.get_data(as_text=True)

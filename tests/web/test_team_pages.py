"""Assignment and internal notes on the staff's pages; the patient's page never shows a note."""

import re

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in, open_conversation


def post(client, conv_id: str, what: str, data: dict):
    page = client.get(f"{BASE}/staff/c/{conv_id}")
    return client.post(f"{BASE}/staff/c/{conv_id}/{what}", data={**data, "csrf": csrf_of(page)})


def test_a_note_is_kept_for_the_team_and_never_shown_to_the_patient(app, staff):
    conv_id, link = open_conversation(staff, "Knie")
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "format=pdf&amp;notes=1" not in html, "no notes, no such export"
    saved = post(staff, conv_id, "notes", {"note": "Rückruf <Dienstag>"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("#team-h")
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    notes = re.search(r'<ol class="notes">.*?</ol>', html, re.S).group(0)
    assert "Rückruf &lt;Dienstag&gt;" in notes and '<span class="who">Sie</span>' in notes
    assert "format=pdf&amp;notes=1" in html
    patient = browser(app).get(BASE + link, follow_redirects=True).get_data(as_text=True)
    assert "Dienstag" not in patient and "Interne Notizen" not in patient


def test_an_empty_or_too_long_note_is_refused_with_the_text_kept(staff):
    conv_id, _ = open_conversation(staff)
    empty = post(staff, conv_id, "notes", {"note": "  "})
    assert empty.status_code == 400 and "Die Notiz ist leer." in empty.get_data(as_text=True)
    long = post(staff, conv_id, "notes", {"note": "y" * 2001})
    html = long.get_data(as_text=True)
    assert long.status_code == 400 and "höchstens 2000 Zeichen" in html and "y" * 2001 in html


def test_assigning_shows_in_the_inbox_and_the_mine_filter(app, staff):
    conv_id, _ = open_conversation(staff, "Rezept")
    other_id, _ = open_conversation(staff, "Andere")
    assert post(staff, conv_id, "assign", {"assignee": STAFF[0]}).status_code == 303
    mine = staff.get(f"{BASE}/staff/?mine=1").get_data(as_text=True)
    assert f'data-conv="{conv_id}"' in mine and f'data-conv="{other_id}"' not in mine
    assert "Ihnen zugewiesen" in mine
    admin = browser(app)
    log_in(admin, *ADMIN)
    listed = admin.get(f"{BASE}/staff/").get_data(as_text=True)
    assert f"zuständig: {STAFF[0]}" in listed
    page = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert f'<option value="{STAFF[0]}" selected>' in page
    refused = post(staff, conv_id, "assign", {"assignee": "niemand"})
    assert refused.status_code == 400
    assert "deaktiviert" in refused.get_data(as_text=True)
    assert post(staff, conv_id, "assign", {"assignee": ""}).status_code == 303
    assert "Ihnen zugewiesen" not in staff.get(f"{BASE}/staff/").get_data(as_text=True)


def test_the_pdf_with_notes_holds_them_and_the_plain_one_does_not(staff):
    from tests.facility.test_records import pdf_text

    conv_id, _ = open_conversation(staff)
    post(staff, conv_id, "notes", {"note": "Nur intern"})
    plain = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf").data
    chosen = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=pdf&notes=1").data
    assert "Nur intern" not in pdf_text(plain)[0]
    assert "Nur intern" in pdf_text(chosen)[0]
    fhir = staff.get(f"{BASE}/staff/c/{conv_id}/export?format=fhir&notes=1").get_data(as_text=True)
    assert "Nur intern" not in fhir, "FHIR exports never carry notes"

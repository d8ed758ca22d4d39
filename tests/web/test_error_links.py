"""An error page leads each reader somewhere that makes sense for them: a patient back to their
own conversation (never to the staff login), staff to their start page."""

import re

from .conftest import BASE, csrf_of, open_conversation

BACK_RE = re.compile(r'<p><a href="([^"]*)">([^<]*)</a></p>')


def back_link(response) -> tuple[str, str]:
    match = BACK_RE.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1), match.group(2)


def test_a_patients_error_page_leads_back_to_their_conversation(app, staff, patient):
    _, link = open_conversation(staff)
    patient.get(BASE + link)
    page = patient.get(f"{BASE}/patient/")
    refused = patient.post(f"{BASE}/patient/messages", data={"body": "Hallo", "csrf": "wrong"})
    assert refused.status_code == 403
    href, text = back_link(refused)
    assert href == "/patient/" and text == "Zurück zu Ihrer Unterhaltung"
    # Where that link goes is the patient's conversation, not the staff login.
    landed = patient.get(BASE + href)
    assert landed.status_code == 200 and 'name="body"' in landed.get_data(as_text=True)
    assert csrf_of(page)


def test_a_patient_missing_a_file_gets_the_same_way_back_in_english(app, staff, patient):
    _, link = open_conversation(staff)
    patient.get(BASE + link)
    missing = patient.get(f"{BASE}/patient/files/no-such-file", headers={"Accept-Language": "en"})
    assert missing.status_code == 404
    assert back_link(missing) == ("/patient/", "Back to your conversation")


def test_a_patient_error_before_the_session_leads_back_to_their_link(app, staff, patient):
    # A stale form on the link page (no session yet): back to that link, never the staff login.
    _, link = open_conversation(staff)
    refused = patient.post(BASE + link, data={"csrf": "stale"})
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert 'href="/"' not in html and "/login" not in html
    assert back_link(refused) == (link, "Zurück zu Ihrer Unterhaltung")


def test_staff_error_pages_still_lead_to_the_start_page(app, staff):
    missing = staff.get(f"{BASE}/staff/files/no-such-file")
    assert missing.status_code == 404
    assert back_link(missing) == ("/", "Zur Startseite")

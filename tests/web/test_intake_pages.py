"""Requests patients start from the practice's start page: where enabled, the form; the link to
keep afterwards, already signed in; the admin's switch and topics."""

from .conftest import BASE, browser, csrf_of


def enable(admin, topics: str = "Rezept\nÜberweisung\nFrage zu Befunden"):
    page = admin.get(f"{BASE}/staff/admin")
    assert "Anliegen von Patientinnen und Patienten" in page.get_data(as_text=True)
    return admin.post(
        f"{BASE}/staff/admin/intake",
        data={"enabled": "on", "categories": topics, "csrf": csrf_of(page)},
    )


def send(client, **fields):
    page = client.get(f"{BASE}/request")
    data = {"category": "Rezept", "name": "Erika Muster", "body": "Bitte Ibuprofen.", **fields}
    return client.post(f"{BASE}/request", data={**data, "csrf": csrf_of(page)})


def test_without_the_switch_the_start_page_is_the_staff_login(app, patient):
    assert patient.get(f"{BASE}/").location.endswith("/staff/")
    assert patient.get(f"{BASE}/request").status_code == 404


def test_a_patient_sends_a_request_and_keeps_the_link(app, admin, staff, patient):
    assert enable(admin).status_code == 303
    start = patient.get(f"{BASE}/")
    assert start.location.endswith("/request")
    form = patient.get(f"{BASE}/request").get_data(as_text=True)
    assert "<option>Überweisung</option>" in form and "Anmeldung für das Praxisteam" in form
    done = send(patient)
    assert done.status_code == 201
    html = done.get_data(as_text=True)
    assert "Ihr Anliegen ist angekommen" in html and f'value="{BASE}/p/' in html
    own = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "Bitte Ibuprofen." in own, "the patient is signed in to the new conversation"
    inbox = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    assert "Erika Muster" in inbox and "Bitte Ibuprofen." in inbox
    assert staff.get(f"{BASE}/").location.endswith("/staff/"), "staff keep their start page"


def test_a_bad_request_keeps_what_was_typed(app, admin, patient):
    enable(admin)
    refused = send(patient, name="")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Bitte wählen Sie ein Thema" in html and "Bitte Ibuprofen.</textarea>" in html


def test_too_many_requests_from_one_client(app, admin):
    enable(admin)
    client = browser(app)
    for _ in range(3):
        assert send(client).status_code == 201
    limited = send(client)
    assert limited.status_code == 429 and "Zu viele Anliegen" in limited.get_data(as_text=True)


def test_the_admin_is_told_about_bad_topics(admin):
    refused = enable(admin, "Rezept\nrezept")
    assert refused.status_code == 400
    assert "verschiedene Themen" in refused.get_data(as_text=True)


def test_english_form(app, admin, patient):
    enable(admin)
    html = patient.get(f"{BASE}/request?lang=en").get_data(as_text=True)
    assert "A request to the practice" in html

"""The notification forms in the pages: staff opt-in, the patient's address, mailing a PIN link."""

import re

import pytest

from .conftest import BASE, STAFF, browser, csrf_of, log_in, make_praxis, open_conversation


@pytest.fixture
def app(tmp_path, clock):
    app = make_praxis(tmp_path, clock, mail=True)
    yield app
    app.extensions["medcell"].store.close()


def queued(app) -> list[dict]:
    medcell = app.extensions["medcell"]
    return medcell.notifier.take(medcell.store.conn())


def patient_page(patient, link: str):
    assert patient.get(f"{BASE}{link}").status_code == 303
    return patient.get(f"{BASE}/patient/")


def test_staff_turn_notifications_on_and_off_for_themselves(app, staff):
    home = staff.get(f"{BASE}/staff/")
    assert "Benachrichtigungen" in home.get_data(as_text=True)
    page = staff.get(f"{BASE}/staff/notifications")
    response = staff.post(
        f"{BASE}/staff/notifications",
        data={"email": "pfleger@praxis.example", "action": "on", "csrf": csrf_of(page)},
    )
    assert response.status_code == 200
    assert 'value="pfleger@praxis.example"' in response.get_data(as_text=True)
    response = staff.post(
        f"{BASE}/staff/notifications", data={"action": "off", "csrf": csrf_of(response)}
    )
    assert "ausgeschaltet" in response.get_data(as_text=True)
    medcell = app.extensions["medcell"]
    assert medcell.notifier.subscribed_staff(medcell.store.conn()) == []


def test_a_bad_address_is_shown_next_to_the_form(app, staff):
    page = staff.get(f"{BASE}/staff/notifications")
    response = staff.post(
        f"{BASE}/staff/notifications",
        data={"email": "two@a.example, b@c.example", "action": "on", "csrf": csrf_of(page)},
    )
    assert response.status_code == 400
    assert "genau eine E-Mail-Adresse" in response.get_data(as_text=True)


def test_the_admin_sees_who_is_notified_but_not_their_addresses(app, staff, admin):
    page = staff.get(f"{BASE}/staff/notifications")
    staff.post(
        f"{BASE}/staff/notifications",
        data={"email": "pfleger@praxis.example", "action": "on", "csrf": csrf_of(page)},
    )
    html = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert "Benachrichtigt werden" in html and STAFF[0] in html
    assert "pfleger@praxis.example" not in html


def test_the_patient_gives_an_address_on_their_page_and_hears_of_answers(app, staff, patient):
    conv_id, link = open_conversation(staff)
    page = patient_page(patient, link)
    html = page.get_data(as_text=True)
    assert 'id="notify-email"' in html
    response = patient.post(
        f"{BASE}/patient/notifications",
        data={"email": "pat@mail.example", "action": "on", "csrf": csrf_of(page)},
    )
    assert response.status_code == 303
    html = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "benachrichtigt, wenn die Praxis antwortet" in html
    assert "pat@mail.example" not in html  # shown nowhere once saved
    staff_view = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "wird per E-Mail über Antworten" in staff_view

    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(
        f"{BASE}/staff/c/{conv_id}/messages", data={"body": "Alles gut", "csrf": csrf_of(page)}
    )
    (mail,) = queued(app)
    assert mail["to"] == "pat@mail.example" and mail["kind"] == "patient_answered"
    assert "Alles gut" not in str(mail)


def test_the_created_page_mails_a_pin_link_once(app, staff):
    home = staff.get(f"{BASE}/staff/")
    page = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "Knie", "pin": "4711", "csrf": csrf_of(home)},
    )
    html = page.get_data(as_text=True)
    assert 'id="link-email"' in html
    conv_id = re.search(r"/staff/c/([A-Za-z0-9_-]{22})", html).group(1)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)

    bad = staff.post(
        f"{BASE}/staff/c/{conv_id}/link-mail",
        data={"token": token, "email": "nope", "csrf": csrf_of(page)},
    )
    assert bad.status_code == 400
    assert "genau eine E-Mail-Adresse" in bad.get_data(as_text=True)
    assert f"/p/{token}" in bad.get_data(as_text=True)  # the link page again, to retry

    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/link-mail",
        data={"token": token, "email": "pat@mail.example", "csrf": csrf_of(page)},
    )
    assert sent.status_code == 202
    (mail,) = queued(app)
    assert mail["to"] == "pat@mail.example" and mail["link"].endswith(f"/p/{token}")
    assert "Knie" not in str(mail) and "4711" not in str(mail)


def test_a_link_without_pin_offers_no_mail(app, staff):
    conv_id, link = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    html = staff.post(
        f"{BASE}/staff/c/{conv_id}/link", data={"pin": "", "confirm": "yes", "csrf": csrf_of(page)}
    ).get_data(as_text=True)
    assert 'id="link-email"' not in html
    assert "mit einer PIN" in html
    token = link.rsplit("/", 1)[-1]
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/link-mail",
        data={"token": token, "email": "pat@mail.example", "csrf": csrf_of(page)},
    )
    assert refused.status_code in (400, 409)  # the old link is stale, and it had no PIN
    assert queued(app) == []


def test_pages_offer_nothing_when_mail_is_not_set_up(tmp_path, clock):
    app = make_praxis(tmp_path / "off", clock)
    staff = browser(app)
    log_in(staff, *STAFF)
    conv_id, link = open_conversation(staff)
    assert "notify-h" not in staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "/staff/notifications" not in staff.get(f"{BASE}/staff/").get_data(as_text=True)
    patient = browser(app)
    assert "notify-email" not in patient_page(patient, link).get_data(as_text=True)
    app.extensions["medcell"].store.close()

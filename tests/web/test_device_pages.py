""" "Stay signed in on this device" for 30 days: a cookie bound to a server-side record that the
patient ends, a new link ends, and the conversation's deletion takes out of the database."""

import sqlite3

import pytest

from .conftest import BASE, browser, csrf_of, open_conversation

DEVICE = "__Host-mc_device"
HOUR, DAY = 3600, 24 * 3600


def devices_in(app) -> int:
    database = app.extensions["medcell"].config.database
    return sqlite3.connect(database).execute("SELECT count(*) FROM patient_devices").fetchone()[0]


def signed_in(staff, patient, pin: str = "2580") -> str:
    """The patient, with a live session of a new PIN conversation; returns the conversation id."""
    conv_id, link = open_conversation(staff, pin=pin)
    patient.get(f"{BASE}{link}")
    page = patient.get(f"{BASE}/patient/pin")
    patient.post(f"{BASE}/patient/pin", data={"pin": pin, "csrf": csrf_of(page)})
    assert patient.get(f"{BASE}/patient/").status_code == 200
    return conv_id


def stay(patient, action: str = "on"):
    page = patient.get(f"{BASE}/patient/")
    return patient.post(f"{BASE}/patient/device", data={"action": action, "csrf": csrf_of(page)})


def session_ended(clock) -> None:
    clock.advance(13 * HOUR)  # past the patient session's 12 hours


@pytest.fixture
def remembered(app, staff, patient):
    conv_id = signed_in(staff, patient)
    response = stay(patient)
    assert response.status_code == 303
    return conv_id, response


def test_the_device_cookie_lasts_30_days_and_only_its_hash_is_stored(app, remembered):
    _, response = remembered
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(DEVICE))
    assert "Max-Age=2592000" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=Strict" in cookie and "Domain" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    database = app.extensions["medcell"].config.database
    stored = sqlite3.connect(database).execute("SELECT token_hash FROM patient_devices").fetchall()
    assert len(stored) == 1 and token.encode() not in stored[0][0]


def test_a_remembered_device_gets_in_without_link_or_pin(clock, patient, remembered):
    page = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "Dieses Gerät bleibt angemeldet bis" in page
    session_ended(clock)
    back = patient.get(f"{BASE}/patient/")
    assert back.status_code == 303 and back.location.endswith("/patient/")
    assert patient.get(f"{BASE}/patient/").status_code == 200
    assert patient.get(f"{BASE}/").location.endswith("/patient/")


def test_after_30_days_the_device_needs_the_link_again(clock, patient, remembered):
    clock.advance(31 * DAY)
    assert patient.get(f"{BASE}/patient/?retry=1").status_code == 401


def test_without_the_choice_an_ended_session_stays_ended(clock, app, staff, patient):
    signed_in(staff, patient)
    session_ended(clock)
    assert patient.get(f"{BASE}/patient/?retry=1").status_code == 401
    assert devices_in(app) == 0


def test_the_patient_signs_the_device_out(clock, app, patient, remembered):
    response = stay(patient, "off")
    assert response.status_code == 303
    assert any(c.startswith(f"{DEVICE}=;") for c in response.headers.getlist("Set-Cookie"))
    assert devices_in(app) == 0
    session_ended(clock)
    assert patient.get(f"{BASE}/patient/?retry=1").status_code == 401


def test_leaving_signs_the_device_out_too(app, patient, remembered):
    page = patient.get(f"{BASE}/patient/")
    patient.post(f"{BASE}/patient/leave", data={"csrf": csrf_of(page)})
    assert devices_in(app) == 0


def test_a_new_link_ends_the_device(clock, app, staff, patient, remembered):
    conv_id, _ = remembered
    confirm = staff.get(f"{BASE}/staff/c/{conv_id}/link")
    made = staff.post(
        f"{BASE}/staff/c/{conv_id}/link",
        data={"pin": "", "confirm": "yes", "csrf": csrf_of(confirm)},
    )
    assert made.status_code == 200
    assert devices_in(app) == 0
    session_ended(clock)
    assert patient.get(f"{BASE}/patient/?retry=1").status_code == 401


def test_the_conversations_deletion_takes_the_device_out_of_the_database(app, patient, remembered):
    page = patient.get(f"{BASE}/patient/delete")
    deleted = patient.post(f"{BASE}/patient/delete", data={"csrf": csrf_of(page)})
    assert deleted.status_code == 200
    assert devices_in(app) == 0
    assert any(c.startswith(f"{DEVICE}=;") for c in deleted.headers.getlist("Set-Cookie"))


def test_a_forged_device_cookie_opens_nothing(app, patient):
    other = browser(app)
    other.set_cookie(DEVICE, "x" * 43, domain="medcell.test")
    assert other.get(f"{BASE}/patient/?retry=1").status_code == 401


def test_the_choice_needs_the_csrf_token(patient, remembered):
    refused = patient.post(f"{BASE}/patient/device", data={"action": "on", "csrf": "x"})
    assert refused.status_code in (400, 403)


def test_english_texts(patient, remembered):
    page = patient.get(f"{BASE}/patient/?lang=en").get_data(as_text=True)
    assert "This device stays signed in until" in page

"""The optional PIN: without it the link opens nothing; wrong PINs lock the link."""

import re

from .conftest import BASE, browser, csrf_of, open_conversation


def enter(client, pin: str):
    form = client.get(f"{BASE}/patient/pin")
    return client.post(f"{BASE}/patient/pin", data={"pin": pin, "csrf": csrf_of(form)})


def test_link_with_pin_asks_for_it_before_showing_anything(app, staff, patient):
    conv_id, link = open_conversation(staff, pin="4711")
    response = patient.get(BASE + link)
    assert response.headers["Location"] == "/patient/pin"
    assert patient.get(f"{BASE}/patient/").headers["Location"] == "/patient/pin"
    page = patient.get(f"{BASE}/patient/pin")
    assert page.status_code == 200 and 'id="pin"' in page.get_data(as_text=True)
    pending = patient.get_cookie("__Host-mc_patient", domain="medcell.test").value
    ok = enter(patient, "4711")
    assert ok.status_code == 303 and ok.headers["Location"] == "/patient/#newest"
    assert patient.get_cookie("__Host-mc_patient", domain="medcell.test").value != pending, (
        "a new session after the PIN"
    )
    assert patient.get(f"{BASE}/patient/").status_code == 200


def test_pin_is_stored_only_as_an_argon2id_hash(app, staff):
    conv_id, _ = open_conversation(staff, pin="13579")
    conn = app.extensions["medcell"].store.conn()
    (stored,) = conn.execute(
        "SELECT pin_hash FROM conversations WHERE id = ?", (conv_id,)
    ).fetchone()
    assert stored.startswith(b"$argon2id$") and b"13579" not in stored


def test_wrong_pins_count_down_and_then_lock_the_link(app, staff, patient):
    _, link = open_conversation(staff, pin="4711")
    patient.get(BASE + link)
    for left in (4, 3, 2, 1):
        response = enter(patient, "0000")
        assert response.status_code == 401
        assert re.search(rf"Noch {left} Versuch", response.get_data(as_text=True))
    locked = enter(patient, "0000")
    assert locked.status_code == 403 and "gesperrt" in locked.get_data(as_text=True)
    # Locked means locked: the right PIN, from a fresh browser, opens nothing now.
    other = browser(app)
    again = other.get(BASE + link)
    assert again.status_code == 403
    assert other.get(f"{BASE}/patient/pin?retry=1").status_code == 401


def test_staff_see_the_lock_and_a_new_link_unlocks(app, staff, patient):
    conv_id, link = open_conversation(staff, pin="4711")
    patient.get(BASE + link)
    for _ in range(5):
        enter(patient, "9999")
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    assert "gesperrt" in page.get_data(as_text=True)
    fresh = staff.post(
        f"{BASE}/staff/c/{conv_id}/link",
        data={"pin": "2468", "confirm": "yes", "csrf": csrf_of(page)},
    )
    new_link = re.search(
        r'readonly value="https://medcell.test([^"]+)"', fresh.get_data(as_text=True)
    )
    assert patient.get(BASE + link).status_code == 404, "the old link is dead"
    patient.get(BASE + new_link.group(1))
    assert enter(patient, "2468").status_code == 303


def test_raw_token_is_no_api_key_when_a_pin_is_set(client_api):
    client, staff_auth = client_api
    made = client.post(
        "/api/v1/conversations", json={"title": "t", "pin": "123456"}, headers=staff_auth
    ).json
    bearer = {"Authorization": f"Bearer {made['patient_token']}"}
    denied = client.get(f"/api/v1/conversations/{made['id']}/messages", headers=bearer)
    assert denied.status_code == 403 and denied.json["error"]["code"] == "pin_required"
    no_pin = client.post("/api/v1/patient-sessions", json={"token": made["patient_token"]})
    assert no_pin.status_code == 403 and no_pin.json["error"]["code"] == "pin_required"
    wrong = client.post(
        "/api/v1/patient-sessions", json={"token": made["patient_token"], "pin": "000000"}
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/api/v1/patient-sessions", json={"token": made["patient_token"], "pin": "123456"}
    )
    assert ok.status_code == 201
    session = {"Authorization": f"Bearer {ok.json['token']}"}
    sent = client.post(
        f"/api/v1/conversations/{made['id']}/messages", json={"body": "hi"}, headers=session
    )
    assert sent.status_code == 201 and sent.json["author"] == "patient"


def test_api_refuses_a_malformed_pin(client_api):
    client, staff_auth = client_api
    for pin in ("12", "123456789", "12ab", 1234):
        response = client.post("/api/v1/conversations", json={"pin": pin}, headers=staff_auth)
        assert response.status_code == 400


def test_conversation_without_pin_still_opens_with_the_raw_token(client_api):
    client, staff_auth = client_api
    made = client.post("/api/v1/conversations", json={}, headers=staff_auth).json
    bearer = {"Authorization": f"Bearer {made['patient_token']}"}
    assert (
        client.get(f"/api/v1/conversations/{made['id']}/messages", headers=bearer).status_code
        == 200
    )


def test_parallel_wrong_pins_cannot_outrun_the_lock(app, client_api):
    """Sixteen guesses at once, from sixteen addresses: still only five are ever checked."""
    import threading

    client, staff_auth = client_api
    made = client.post(
        "/api/v1/conversations", json={"title": "t", "pin": "4711"}, headers=staff_auth
    ).json
    answers = []

    def guess(i: int) -> None:
        response = app.test_client().post(
            "/api/v1/patient-sessions",
            json={"token": made["patient_token"], "pin": f"{1000 + i:04d}"},
            headers={"X-Forwarded-For": f"10.1.0.{i}"},
        )
        answers.append((response.status_code, response.json["error"]["code"]))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for status, _ in answers if status == 401) == 4
    assert sum(1 for _, code in answers if code == "link_locked") == 12
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT pin_failures FROM conversations").fetchone()[0] == 5
    right = client.post(
        "/api/v1/patient-sessions", json={"token": made["patient_token"], "pin": "4711"}
    )
    assert right.status_code == 403 and right.json["error"]["code"] == "link_locked"

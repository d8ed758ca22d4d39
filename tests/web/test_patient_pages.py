"""The patient's side without JavaScript: read, reply, attach, delete — and nothing remains."""

import io
import logging
import re

from .conftest import BASE, csrf_of, open_conversation

PDF = b"%PDF-1.4\n% test\n" + bytes(range(256)) * 8


def opened(staff, patient, **kwargs) -> str:
    conv_id, link = open_conversation(staff, **kwargs)
    patient.get(BASE + link)
    return conv_id


def test_patient_replies_with_a_plain_form(app, staff, patient):
    conv_id = opened(staff, patient)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"body": "Wie geht es Ihnen?", "csrf": csrf_of(page)},
    )
    mine = patient.get(f"{BASE}/patient/")
    assert "Wie geht es Ihnen?" in mine.get_data(as_text=True)
    assert mine.headers["Cache-Control"] == "no-store"
    sent = patient.post(
        f"{BASE}/patient/messages", data={"body": "Viel besser, danke!", "csrf": csrf_of(mine)}
    )
    assert sent.status_code == 303 and sent.headers["Location"].startswith("/patient/#m-")
    seen = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "Viel besser, danke!" in seen


def test_patient_sees_when_the_conversation_will_be_deleted(app, staff, patient):
    opened(staff, patient)
    html = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "Diese Unterhaltung wird gelöscht am" in html and "7 Tage" in html


def test_patient_attaches_a_pdf_and_gets_it_back(app, staff, patient):
    conv_id = opened(staff, patient)
    page = patient.get(f"{BASE}/patient/")
    sent = patient.post(
        f"{BASE}/patient/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(PDF), "laborwerte.pdf")},
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    att_id = re.search(r"/staff/files/([A-Za-z0-9_-]{22})", html).group(1)
    assert staff.get(f"{BASE}/staff/files/{att_id}?download=1").data == PDF
    assert patient.get(f"{BASE}/patient/files/{att_id}").data == PDF


def test_patient_cannot_fetch_files_of_other_conversations(app, staff, patient):
    other = open_conversation(staff)[0]
    page = staff.get(f"{BASE}/staff/c/{other}")
    staff.post(
        f"{BASE}/staff/c/{other}/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(PDF), "x.pdf")},
    )
    html = staff.get(f"{BASE}/staff/c/{other}").get_data(as_text=True)
    att_id = re.search(r"/staff/files/([A-Za-z0-9_-]{22})", html).group(1)
    opened(staff, patient)
    assert patient.get(f"{BASE}/patient/files/{att_id}").status_code == 404


def test_patient_deletes_the_conversation_with_one_confirmation(app, staff, patient):
    conv_id = opened(staff, patient)
    page = patient.get(f"{BASE}/patient/")
    patient.post(f"{BASE}/patient/messages", data={"body": "geheim", "csrf": csrf_of(page)})
    patient.post(
        f"{BASE}/patient/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(PDF), "scan.pdf")},
    )
    confirm = patient.get(f"{BASE}/patient/delete")
    assert "wirklich löschen" in confirm.get_data(as_text=True)
    done = patient.post(f"{BASE}/patient/delete", data={"csrf": csrf_of(confirm)})
    assert done.status_code == 200
    assert "nichts davon mehr gespeichert" in done.get_data(as_text=True)
    assert "__Host-mc_patient=;" in done.headers["Set-Cookie"]
    conn = app.extensions["medcell"].store.conn()
    for table in (
        "conversations",
        "messages",
        "attachments",
        "attachment_chunks",
        "record_keys",
        "patient_sessions",
    ):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert staff.get(f"{BASE}/staff/c/{conv_id}").status_code == 404
    assert conv_id not in staff.get(f"{BASE}/staff/").get_data(as_text=True)


def test_leaving_ends_the_session_on_this_device(app, staff, patient):
    opened(staff, patient)
    page = patient.get(f"{BASE}/patient/")
    left = patient.post(f"{BASE}/patient/leave", data={"csrf": csrf_of(page)})
    assert left.status_code == 200
    assert patient.get(f"{BASE}/patient/?retry=1").status_code == 401


def test_pages_carry_the_security_headers(app, staff, patient):
    opened(staff, patient)
    for client, path in (
        (patient, "/patient/"),
        (staff, "/staff/"),
        (patient, "/login"),
        (patient, "/static/medcell.css"),
    ):
        response = client.get(f"{BASE}{path}")
        assert (
            response.headers["Content-Security-Policy"]
            == "default-src 'self'; frame-src blob:; frame-ancestors 'none'"
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        html = response.get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and "http://" not in html


def test_logs_hold_no_token_pin_or_message(app, staff, patient, caplog):
    caplog.set_level(logging.INFO, logger="medcell")
    conv_id, link = open_conversation(staff, pin="8642")
    patient.get(BASE + link)
    form = patient.get(f"{BASE}/patient/pin")
    patient.post(f"{BASE}/patient/pin", data={"pin": "1111", "csrf": csrf_of(form)})
    patient.post(f"{BASE}/patient/pin", data={"pin": "8642", "csrf": csrf_of(form)})
    page = patient.get(f"{BASE}/patient/")
    patient.post(
        f"{BASE}/patient/messages", data={"body": "Ausschlag am Arm", "csrf": csrf_of(page)}
    )
    # What a log line carries: its message and fields (not the record's timestamps and ids).
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    token = link.rsplit("/", 1)[1]
    session = patient.get_cookie("__Host-mc_patient", domain="medcell.test").value
    for secret in (token, session, "8642", "1111", "Ausschlag", conv_id):
        assert secret not in text

"""Storage in the pages: admins see usage; a full facility says so next to the form."""

import io
import re

from services.facility.core import quota

from .conftest import BASE, csrf_of, open_conversation

PDF = b"%PDF-1.4\n% test\n" + bytes(range(256)) * 8


def fill_facility(app) -> None:
    """Store 1 MiB, then set the quota to what the facility uses: it is at 100 %."""
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()
    conv_id, _ = medcell.conversations.create(conn, "filler")
    medcell.conversations.add_attachment(
        conn,
        conv_id,
        "staff",
        "a.pdf",
        "application/pdf",
        io.BytesIO(b"%PDF-" + bytes(1024 * 1024 - 5)),
    )
    used = quota.facility_used(conn)
    quota.set_quotas(conn, facility=f"{used // 1024}KiB")


def test_admin_page_shows_usage_and_the_largest_conversations(app, admin, staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    page = patient.get(f"{BASE}/patient/")
    patient.post(
        f"{BASE}/patient/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(PDF), "laborwerte.pdf")},
    )
    html = admin.get(f"{BASE}/staff/admin?lang=en").get_data(as_text=True)
    assert "Storage" in html and "of 2.0 GB" in html and "set by the operator" in html
    assert "Each conversation may take at most 200 MB." in html
    assert re.search(r"2[.,]\d KB · messages: 1 · files: 1", html)
    assert "laborwerte" not in html and conv_id not in html


def test_admin_page_warns_when_storage_is_full(app, admin):
    fill_facility(app)
    html = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert "Der Speicher ist voll" in html and 'role="alert"' in html


def test_patient_reply_on_a_full_facility_shows_the_notice_and_keeps_the_form(app, staff, patient):
    _, link = open_conversation(staff)
    patient.get(BASE + link)
    fill_facility(app)
    page = patient.get(f"{BASE}/patient/")
    answer = patient.post(
        f"{BASE}/patient/messages", data={"body": "Hallo, geht es?", "csrf": csrf_of(page)}
    )
    assert answer.status_code == 507
    html = answer.get_data(as_text=True)
    assert "Der Speicher der Praxis ist voll. Es wurde nichts gespeichert." in html
    assert 'name="body"' in html
    assert "Hallo, geht es?" not in patient.get(f"{BASE}/patient/").get_data(as_text=True)


def test_staff_upload_into_a_full_conversation_is_refused_readably(app, staff):
    conv_id, _ = open_conversation(staff)
    quota.set_quotas(app.extensions["medcell"].store.conn(), conversation="1MiB")
    page = staff.get(f"{BASE}/staff/c/{conv_id}?lang=en")
    big = b"%PDF-1.4\n" + bytes(1024 * 1024)
    answer = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(big), "scan.pdf")},
    )
    assert answer.status_code == 413
    assert "This conversation has used up its storage." in answer.get_data(as_text=True)


def test_new_conversation_on_a_full_facility_is_a_readable_error_page(app, staff):
    fill_facility(app)
    page = staff.get(f"{BASE}/staff/?lang=en")
    answer = staff.post(f"{BASE}/staff/conversations", data={"csrf": csrf_of(page), "title": "x"})
    assert answer.status_code == 507
    assert "storage is full. Nothing was stored." in answer.get_data(as_text=True)


def test_admin_page_in_german_uses_a_decimal_comma(app, admin):
    fill_facility(app)
    html = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert re.search(r"Belegt: 1,\d MB von 1,\d MB \(10\d,\d %\)\.", html), html

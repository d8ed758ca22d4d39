"""Deletion receipts in the pages: shown and offered for download after a deletion, listed
content-free for staff and for the admin."""

import re

from .conftest import BASE, csrf_of, open_conversation

RECEIPT_LINK = re.compile(r'href="(/api/v1/receipts/([A-Za-z0-9_-]{22})\?download)"')


def delete_as_patient(staff, patient) -> str:
    conv_id, link = open_conversation(staff, title="Frau Beispiel, Ausschlag")
    patient.get(BASE + link)
    confirm = patient.get(f"{BASE}/patient/delete")
    done = patient.post(f"{BASE}/patient/delete", data={"csrf": csrf_of(confirm)})
    assert done.status_code == 200
    return done.get_data(as_text=True)


def test_the_patients_deleted_page_shows_the_receipt_and_offers_it_as_a_file(app, staff, patient):
    html = delete_as_patient(staff, patient)
    assert "Löschbeleg" in html
    assert "von der Patientin oder dem Patienten gelöscht" in html
    assert "0 Nachrichten und 0 Dateien, samt 1 Schlüssel zum Entschlüsseln" in html
    href, receipt_id = RECEIPT_LINK.search(html).groups()
    assert f'download="receipt-{receipt_id}.json"' in html
    # The patient's session is gone with the conversation; the file still comes, by its id.
    file = patient.get(BASE + href)
    assert file.status_code == 200 and "attachment" in file.headers["Content-Disposition"]
    assert file.json["receipt_id"] == receipt_id and file.json["reason"] == "patient"
    assert patient.get(f"{BASE}/api/v1/receipt-key").json["algorithm"] == "Ed25519"


def test_staff_see_a_content_free_entry_and_the_staff_delete_page_shows_its_receipt(
    app, staff, patient
):
    delete_as_patient(staff, patient)
    home = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    assert "Eine Unterhaltung wurde von der Patientin oder dem Patienten gelöscht am" in home
    assert "Beispiel" not in home and "Ausschlag" not in home
    conv_id, _ = open_conversation(staff)
    confirm = staff.get(f"{BASE}/staff/c/{conv_id}/delete")
    done = staff.post(f"{BASE}/staff/c/{conv_id}/delete", data={"csrf": csrf_of(confirm)})
    html = done.get_data(as_text=True)
    assert "Löschbeleg" in html and "vom Team gelöscht" in html
    assert RECEIPT_LINK.search(html)


def test_the_admin_page_lists_receipts_with_the_public_key(app, staff, admin, patient):
    delete_as_patient(staff, patient)
    open_conversation(staff)
    wipe = admin.get(f"{BASE}/staff/admin/wipe")
    admin.post(f"{BASE}/staff/admin/wipe", data={"csrf": csrf_of(wipe), "confirm": "praxis"})
    page = admin.get(f"{BASE}/staff/admin?lang=en").get_data(as_text=True)
    assert "Deletion receipts" in page
    assert "all patient data of the practice deleted" in page and "deleted by the patient" in page
    assert len(RECEIPT_LINK.findall(page)) == 2
    key = admin.get(f"{BASE}/api/v1/receipt-key").json["public_key"]
    assert key in page


DATABASE_WORDS = ("Schlüssel:", "Zeile", "Datenbank", "Protokoll", "row", "database", "keys:")


def test_the_receipt_says_in_words_what_was_deleted_when_and_that_nothing_remains(
    app, staff, patient
):
    conv_id, link = open_conversation(staff, title="Frau Beispiel, Ausschlag")
    patient.get(BASE + link)
    page = patient.get(f"{BASE}/patient/")
    patient.post(f"{BASE}/patient/messages", data={"body": "Danke", "csrf": csrf_of(page)})
    confirm = patient.get(f"{BASE}/patient/delete")
    html = patient.post(f"{BASE}/patient/delete", data={"csrf": csrf_of(confirm)}).get_data(
        as_text=True
    )
    text = re.sub(r"<[^>]+>", " ", html)
    assert "1 Nachricht und 0 Dateien, samt 2 Schlüsseln zum Entschlüsseln" in text
    assert "Gelöscht am" in text
    assert "Ja: Davon ist nichts mehr gespeichert; die Löschung ist nachgeprüft." in text
    assert not [w for w in DATABASE_WORDS if w in text]
    # The signed receipt itself keeps its fields: the page words them, the file does not change.
    receipt_id = RECEIPT_LINK.search(html).group(2)
    signed = patient.get(f"{BASE}/api/v1/receipts/{receipt_id}").json
    assert signed["counts"] == {"messages": 1, "attachments": 0, "record_keys": 2}


def test_the_receipt_in_english_speaks_to_people_too(app, staff, patient):
    _, link = open_conversation(staff)
    patient.get(BASE + link)
    confirm = patient.get(f"{BASE}/patient/delete?lang=en")
    html = patient.post(f"{BASE}/patient/delete", data={"csrf": csrf_of(confirm)}).get_data(
        as_text=True
    )
    text = re.sub(r"<[^>]+>", " ", html)
    assert "0 messages and 0 files, with 1 key that could decrypt them" in text
    assert "Yes: none of it is stored any more; the deletion was checked." in text
    assert not [w for w in DATABASE_WORDS if w in text]

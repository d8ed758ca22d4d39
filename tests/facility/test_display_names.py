"""Display names: set at account creation, changed by the account or an admin, shown on every
staff message (API, export), in the patient's access log; kept apart from the login."""

import sqlite3

import pytest

from services.facility.core import migrations
from tests.facility.conftest import ADMIN, STAFF, login
from tests.facility.schema_steps import undo_after_v11
from tests.facility.test_records import pdf_text


def name_of(client, auth, username: str) -> str:
    staff = client.get("/api/v1/staff", headers=auth).json["staff"]
    return {s["username"]: s["display_name"] for s in staff}[username]


def rename(client, auth, username: str, name):
    return client.put(
        f"/api/v1/staff/{username}/display-name", json={"display_name": name}, headers=auth
    )


def test_an_account_gets_its_display_name_at_creation_else_its_login_stands_in(client, admin_auth):
    made = client.post(
        "/api/v1/staff",
        json={"username": "weber", "display_name": "  Dr. Weber  ", "password": "x" * 12},
        headers=admin_auth,
    )
    assert made.status_code == 201 and made.json["display_name"] == "Dr. Weber"
    assert name_of(client, admin_auth, "weber") == "Dr. Weber"
    assert name_of(client, admin_auth, "nurse") == "nurse"
    me = client.get("/api/v1/me", headers=login(client, "weber", "x" * 12)).json
    assert me["display_name"] == "Dr. Weber" and me["username"] == "weber"


@pytest.mark.parametrize(
    "bad", ["", "   ", "Anna\nBerg", "Anna\u2028Berg", "Tab\there", "x" * 81, 42, None]
)
def test_a_bad_display_name_is_refused_and_changes_nothing(client, admin_auth, staff_auth, bad):
    response = rename(client, staff_auth, STAFF[0], bad)
    assert response.status_code == 400
    assert set(response.json["error"]) == {"code", "message"}
    assert name_of(client, admin_auth, STAFF[0]) == STAFF[0]
    made = client.post(
        "/api/v1/staff",
        json={"username": "neu", "display_name": bad, "password": "x" * 12},
        headers=admin_auth,
    )
    assert made.status_code == 400 and "neu" not in str(
        client.get("/api/v1/staff", headers=admin_auth).json
    )


def test_the_account_renames_itself_an_admin_anyone_nobody_else(client, admin_auth, staff_auth):
    assert rename(client, staff_auth, STAFF[0], "Pfleger Tom").json["display_name"] == "Pfleger Tom"
    refused = rename(client, staff_auth, ADMIN[0], "Chef")
    assert refused.status_code == 403 and set(refused.json["error"]) == {"code", "message"}
    assert rename(client, admin_auth, STAFF[0], "Tom B.").status_code == 200
    assert name_of(client, admin_auth, STAFF[0]) == "Tom B."
    assert rename(client, admin_auth, "nobody", "X").status_code == 404


def test_messages_name_the_colleague_who_wrote_them_and_tell_the_caller_its_own(
    client, staff_auth, admin_auth, conversation
):
    rename(client, staff_auth, STAFF[0], "Pfleger Tom")
    base = f"/api/v1/conversations/{conversation['id']}/messages"
    client.post(base, json={"body": "Von Tom"}, headers=staff_auth)
    client.post(base, json={"body": "Von der Patientin"}, headers=conversation["patient"])
    client.post(base, json={"body": "Von der Chefin"}, headers=admin_auth)

    def seen_by(auth):
        return [
            (m["author_name"], m["own"]) for m in client.get(base, headers=auth).json["messages"]
        ]

    assert seen_by(staff_auth) == [("Pfleger Tom", True), (None, False), ("admin", False)]
    assert seen_by(admin_auth) == [("Pfleger Tom", False), (None, False), ("admin", True)]
    assert seen_by(conversation["patient"]) == [
        ("Pfleger Tom", False),
        (None, True),
        ("admin", False),
    ]
    rename(client, admin_auth, ADMIN[0], "Dr. Anna Berg")
    assert seen_by(staff_auth)[2] == ("Dr. Anna Berg", False)


def test_the_patients_access_log_shows_the_display_name_not_the_login(
    client, staff_auth, conversation
):
    rename(client, staff_auth, STAFF[0], "Pfleger Tom")
    client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=staff_auth)
    log = client.get(
        f"/api/v1/conversations/{conversation['id']}/access-log", headers=conversation["patient"]
    ).json["entries"]
    assert [e["who"] for e in log] == ["Pfleger Tom"]
    assert STAFF[0] not in str(log)


def test_the_pdf_names_the_writer_of_each_staff_message_and_who_exported(
    client, staff_auth, admin_auth, conversation
):
    rename(client, staff_auth, STAFF[0], "Pfleger Tom")
    rename(client, admin_auth, ADMIN[0], "Dr. Anna Berg")
    base = f"/api/v1/conversations/{conversation['id']}"
    client.post(f"{base}/messages", json={"body": "Bitte kommen"}, headers=staff_auth)
    pdf = client.get(f"{base}/export?format=pdf", headers=admin_auth)
    text, _ = pdf_text(pdf.data)
    assert "Pfleger Tom (Praxisteam)" in text
    assert "von Dr. Anna Berg" in text and "von admin" not in text


def test_a_removed_accounts_messages_stay_readable_and_no_new_account_inherits_them(
    client, admin_auth, staff_auth, conversation
):
    base = f"/api/v1/conversations/{conversation['id']}/messages"
    client.post(base, json={"body": "Vor dem Abschied"}, headers=staff_auth)
    assert client.delete(f"/api/v1/staff/{STAFF[0]}", headers=admin_auth).status_code == 204
    client.post("/api/v1/staff", json={"username": "neu", "password": "x" * 12}, headers=admin_auth)
    (message,) = client.get(base, headers=admin_auth).json["messages"]
    assert message["body"] == "Vor dem Abschied"
    assert message["author_name"] is None  # its writer is gone; the new account is not them


def test_a_message_moved_to_another_writer_reads_as_damaged(
    app, client, staff_auth, admin_auth, conversation
):
    base = f"/api/v1/conversations/{conversation['id']}/messages"
    client.post(base, json={"body": "Echt"}, headers=staff_auth)
    app.extensions["medcell"].store.conn().execute("UPDATE messages SET staff_id = staff_id + 1")
    listed = client.get(base, headers=admin_auth)
    assert listed.status_code == 500 and listed.json["error"]["code"] == "record_damaged"


def test_an_existing_facility_keeps_its_data_when_display_names_arrive(make_app):
    """A database of the version before (v9): accounts and messages survive the upgrade."""
    app = make_app()
    client = app.test_client()
    staff = login(client, *STAFF)
    conv = client.post("/api/v1/conversations", json={"title": "Alt"}, headers=staff).json
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    base = f"/api/v1/conversations/{conv['id']}/messages"
    client.post(base, json={"body": "Von früher"}, headers=patient)
    medcell = app.extensions["medcell"]
    db = sqlite3.connect(medcell.config.database, isolation_level=None)
    undo_after_v11(db)
    db.execute("DROP TABLE notes")  # v11
    db.execute("ALTER TABLE conversations DROP COLUMN assigned_to")
    db.execute("ALTER TABLE messages DROP COLUMN staff_id")
    db.execute("ALTER TABLE staff DROP COLUMN display_name")
    db.execute("DELETE FROM counters WHERE name = 'staff_last_id'")
    db.execute(f"PRAGMA user_version = {migrations.MIGRATIONS.index(migrations.V10)}")
    medcell.store.close()

    again = make_app()
    client = again.test_client()
    admin = login(client, *ADMIN)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    (message,) = client.get(base, headers=admin).json["messages"]
    assert message["body"] == "Von früher" and message["author_name"] is None
    assert name_of(client, admin, STAFF[0]) == STAFF[0]
    made = client.post(
        "/api/v1/staff", json={"username": "neu", "password": "x" * 12}, headers=admin
    )
    assert made.status_code == 201
    ids = dict(db.execute("SELECT username, id FROM staff"))
    assert ids["neu"] > max(ids[ADMIN[0]], ids[STAFF[0]])

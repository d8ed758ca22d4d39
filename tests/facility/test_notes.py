"""Internal notes and assignment: the team's own, never the patient's; notes in the PDF only
when chosen."""

import pytest

from services.facility.core.notes import MAX_NOTE_CHARS
from tests.facility.conftest import ADMIN, STAFF, login
from tests.facility.schema_steps import undo_after_v11
from tests.facility.test_records import pdf_text


def note(client, conversation, auth, body):
    return client.post(
        f"/api/v1/conversations/{conversation['id']}/notes", json={"body": body}, headers=auth
    )


def notes(client, conversation, auth) -> list[dict]:
    response = client.get(f"/api/v1/conversations/{conversation['id']}/notes", headers=auth)
    assert response.status_code == 200, response.json
    return response.json["notes"]


def assign(client, conversation, auth, username):
    return client.put(
        f"/api/v1/conversations/{conversation['id']}/assignee",
        json={"username": username},
        headers=auth,
    )


def inbox(client, auth, **params) -> list[dict]:
    return client.get("/api/v1/inbox", headers=auth, query_string=params).json["conversations"]


def test_notes_are_for_the_team_with_their_writer_and_never_for_the_patient(
    client, staff_auth, admin_auth, conversation
):
    assert note(client, conversation, staff_auth, "Rückruf vereinbart").status_code == 201
    assert note(client, conversation, admin_auth, "Befund fehlt noch").status_code == 201
    seen = notes(client, conversation, staff_auth)
    assert [(n["body"], n["author_name"], n["own"]) for n in seen] == [
        ("Rückruf vereinbart", "nurse", True),
        ("Befund fehlt noch", "admin", False),
    ]
    patient = conversation["patient"]
    base = f"/api/v1/conversations/{conversation['id']}"
    assert client.get(f"{base}/notes", headers=patient).status_code == 403
    assert note(client, conversation, patient, "von mir").status_code == 403
    assert client.get(f"{base}/messages", headers=patient).json["messages"] == []


@pytest.mark.parametrize("bad", ["", "   \n", "x" * (MAX_NOTE_CHARS + 1), 42, None, "a\x00b"])
def test_a_bad_note_is_refused_and_nothing_is_stored(client, staff_auth, conversation, bad):
    response = note(client, conversation, staff_auth, bad)
    assert response.status_code == 400
    assert set(response.json["error"]) == {"code", "message"}
    assert notes(client, conversation, staff_auth) == []


def test_a_note_on_an_unknown_conversation_is_404(client, staff_auth):
    response = note(client, {"id": "A" * 22}, staff_auth, "x")
    assert response.status_code == 404 and set(response.json["error"]) == {"code", "message"}


def test_a_note_does_not_move_the_expiry(client, staff_auth, conversation, clock):
    base = f"/api/v1/conversations/{conversation['id']}"
    before = client.get(base, headers=staff_auth).json["expires_at"]
    clock.advance(3600)
    note(client, conversation, staff_auth, "intern")
    assert client.get(base, headers=staff_auth).json["expires_at"] == before


def test_assignment_shows_in_the_inbox_and_mine_filters_by_it(
    client, staff_auth, admin_auth, conversation
):
    other = client.post("/api/v1/conversations", json={"title": "Andere"}, headers=staff_auth)
    assert assign(client, conversation, admin_auth, STAFF[0]).json["assignee"] == {
        "username": STAFF[0],
        "display_name": STAFF[0],
    }
    rows = {r["id"]: r for r in inbox(client, admin_auth)}
    assert rows[conversation["id"]]["assignee"]["username"] == STAFF[0]
    assert rows[other.json["id"]]["assignee"] is None
    assert [r["id"] for r in inbox(client, staff_auth, filter="mine")] == [conversation["id"]]
    assert inbox(client, admin_auth, filter="mine") == []
    assert assign(client, conversation, staff_auth, None).json["assignee"] is None
    assert inbox(client, staff_auth, filter="mine") == []


def test_assigning_to_an_unknown_or_deactivated_account_is_refused(
    client, staff_auth, admin_auth, conversation
):
    assert assign(client, conversation, staff_auth, "niemand").status_code == 404
    client.post(f"/api/v1/staff/{STAFF[0]}/deactivate", headers=admin_auth)
    refused = assign(client, conversation, admin_auth, STAFF[0])
    assert refused.status_code == 404 and set(refused.json["error"]) == {"code", "message"}
    for bad in (42, "Not A Login", ""):
        assert assign(client, conversation, admin_auth, bad).status_code == 400
    assert assign(client, conversation, conversation["patient"], ADMIN[0]).status_code == 403
    assert inbox(client, admin_auth)[0]["assignee"] is None


def test_removing_an_account_unassigns_its_conversations(
    client, staff_auth, admin_auth, conversation
):
    assign(client, conversation, admin_auth, STAFF[0])
    client.delete(f"/api/v1/staff/{STAFF[0]}", headers=admin_auth)
    assert inbox(client, admin_auth)[0]["assignee"] is None


def test_notes_go_into_the_pdf_only_when_chosen(client, staff_auth, conversation):
    note(client, conversation, staff_auth, "Nur intern: Rückruf Dienstag")
    base = f"/api/v1/conversations/{conversation['id']}/export"
    plain, _ = pdf_text(client.get(f"{base}?format=pdf", headers=staff_auth).data)
    assert "Rückruf Dienstag" not in plain and "Interne Notizen" not in plain
    chosen, _ = pdf_text(client.get(f"{base}?format=pdf&notes=1", headers=staff_auth).data)
    assert "Interne Notizen des Praxisteams" in chosen and "Rückruf Dienstag" in chosen
    fhir = client.get(f"{base}?format=fhir&notes=1", headers=staff_auth)
    assert fhir.status_code == 200 and "Rückruf Dienstag" not in fhir.get_data(as_text=True)
    assert client.get(f"{base}?format=pdf&notes=yes", headers=staff_auth).status_code == 400


def test_a_note_moved_to_another_writer_reads_as_damaged(app, client, staff_auth, conversation):
    note(client, conversation, staff_auth, "echt")
    app.extensions["medcell"].store.conn().execute("UPDATE notes SET staff_id = staff_id + 1")
    response = client.get(
        f"/api/v1/conversations/{conversation['id']}/notes", headers=login(client, *ADMIN)
    )
    assert response.status_code == 500 and response.json["error"]["code"] == "record_damaged"


def test_an_existing_facility_keeps_its_conversations_when_notes_arrive(make_app):
    """A database of the version before (v10): its conversations survive the upgrade."""
    import sqlite3

    from services.facility.core import migrations

    app = make_app()
    client = app.test_client()
    staff = login(client, *STAFF)
    conv = client.post("/api/v1/conversations", json={"title": "Alt"}, headers=staff).json
    base = f"/api/v1/conversations/{conv['id']}"
    client.post(f"{base}/messages", json={"body": "Von früher"}, headers=staff)
    medcell = app.extensions["medcell"]
    db = sqlite3.connect(medcell.config.database, isolation_level=None)
    undo_after_v11(db)
    db.execute("DROP TABLE notes")
    db.execute("ALTER TABLE conversations DROP COLUMN assigned_to")
    db.execute(f"PRAGMA user_version = {migrations.MIGRATIONS.index(migrations.V11)}")
    medcell.store.close()

    client = make_app().test_client()
    staff = login(client, *STAFF)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert client.get(f"{base}/messages", headers=staff).json["messages"][0]["body"] == "Von früher"
    assert note(client, conv, staff, "neu").status_code == 201
    assert assign(client, conv, staff, STAFF[0]).status_code == 200

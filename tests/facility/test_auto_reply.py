"""The automatic reply outside opening hours: once per conversation and closed period."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.facility.conftest import ADMIN, STAFF, DocumentedClient, login
from tests.facility.test_records import pdf_text

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = "Mo–Fr 8–12 Uhr, Di/Do 14–18 Uhr"
TEXT = "Die Praxis ist geschlossen. Wir antworten ab 8 Uhr; im Notfall 112."


def at(clock, day: int, hour: int, minute: int = 0) -> None:
    """Set the clock to January `day` 2027, Berlin time (the 18th is a Monday)."""
    moment = datetime(2027, 1, day, hour, minute, tzinfo=BERLIN)
    clock.now = int(moment.timestamp() * 1_000_000)


@pytest.fixture(autouse=True)
def monday_morning(clock):
    """The tests' days are in one week of January 2027 (staff log in again after a jump: their
    sessions last 12 hours)."""
    at(clock, 18, 7)


@pytest.fixture
def practice(client, admin_auth):
    assert client.put("/api/v1/contact", json={"hours": HOURS}, headers=admin_auth).status_code
    response = client.put(
        "/api/v1/auto-reply", json={"enabled": True, "text": TEXT}, headers=admin_auth
    )
    assert response.status_code == 200, response.json
    assert response.json == {"enabled": True, "text": TEXT, "hours_known": True}


def write(client, conversation, body="Frage"):
    auth = conversation["patient"]
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    assert client.post(url, json={"body": body}, headers=auth).status_code == 201
    return client.get(url, headers=auth).json["messages"]


def replies(messages) -> int:
    return sum(m["body"] == TEXT for m in messages)


def test_a_patient_writing_while_closed_gets_one_reply_per_closed_period(
    client, practice, conversation, clock
):
    at(clock, 18, 19)  # Monday evening: closed since 12:00
    messages = write(client, conversation)
    assert [m["author"] for m in messages] == ["patient", "staff"]
    assert messages[-1]["body"] == TEXT and messages[-1]["author_name"] is None
    at(clock, 18, 22)
    assert replies(write(client, conversation)) == 1  # the same closed period
    at(clock, 19, 9)  # Tuesday morning: open
    assert replies(write(client, conversation)) == 1
    at(clock, 19, 12, 30)  # Tuesday lunch: closed again, a new period
    assert replies(write(client, conversation)) == 2
    at(clock, 19, 15)  # Tuesday afternoon: open
    assert replies(write(client, conversation)) == 2


def test_the_reply_is_marked_automatic_and_the_patient_still_waits_for_an_answer(
    client, practice, conversation, clock
):
    at(clock, 18, 19)
    asked = write(client, conversation, "Mein Knie ist geschwollen")[0]
    staff_auth = login(client, *STAFF)
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    for reader in (staff_auth, conversation["patient"]):
        question, reply = client.get(url, headers=reader).json["messages"]
        assert (question["automatic"], reply["automatic"]) == (False, True)
        assert reply["author"] == "staff" and reply["author_name"] is None
        assert reply["own"] is False
    # The inbox: it came last, but nobody has answered the patient yet.
    (row,) = client.get("/api/v1/inbox", headers=staff_auth).json["conversations"]
    assert row["last_message"]["automatic"] is True and row["last_message"]["preview"]
    assert row["waiting_since"] == asked["created_at"]
    waiting = client.get("/api/v1/inbox?filter=waiting", headers=staff_auth).json
    assert [r["id"] for r in waiting["conversations"]] == [conversation["id"]]
    # The exports say so too.
    base = f"/api/v1/conversations/{conversation['id']}/export"
    text, _ = pdf_text(client.get(f"{base}?format=pdf", headers=staff_auth).data)
    assert "Automatische Antwort der Praxis" in text
    bundle = client.get(f"{base}?format=fhir", headers=staff_auth).json
    senders = [
        e["resource"]["sender"]["display"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Communication"
    ]
    assert senders[1].endswith(" (automatische Antwort)")
    # The morning's answer by a person ends the wait and is not automatic.
    at(clock, 19, 9)
    staff_auth = login(client, *STAFF)
    client.post(url, json={"body": "Bitte kommen Sie vorbei"}, headers=staff_auth)
    (row,) = client.get("/api/v1/inbox", headers=staff_auth).json["conversations"]
    assert row["waiting_since"] is None and row["last_message"]["automatic"] is False


def test_while_open_or_switched_off_nothing_is_sent(client, practice, conversation, clock):
    at(clock, 20, 10)  # Wednesday 10:00: open
    assert replies(write(client, conversation)) == 0
    admin = login(client, *ADMIN)
    off = client.put("/api/v1/auto-reply", json={"enabled": False}, headers=admin)
    assert off.json == {"enabled": False, "text": "", "hours_known": True}
    at(clock, 23, 10)  # Saturday: closed, but off
    assert replies(write(client, conversation)) == 0


def test_staff_messages_never_get_one(client, practice, conversation, clock):
    at(clock, 23, 10)
    staff_auth = login(client, *STAFF)
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    client.post(url, json={"body": "Ergebnis ist da"}, headers=staff_auth)
    assert [m["body"] for m in client.get(url, headers=staff_auth).json["messages"]] == [
        "Ergebnis ist da"
    ]


def test_hours_without_times_never_count_as_closed(
    client, admin_auth, practice, conversation, clock
):
    client.put("/api/v1/contact", json={"hours": "nach Vereinbarung"}, headers=admin_auth)
    shown = client.get("/api/v1/auto-reply", headers=admin_auth).json
    assert shown == {"enabled": True, "text": TEXT, "hours_known": False}
    at(clock, 24, 3)  # Sunday night
    assert replies(write(client, conversation)) == 0


def test_the_hours_are_in_the_practices_time_zone(make_app, clock):
    app = make_app("beta", timezone="America/New_York")
    app.test_client_class = DocumentedClient
    client = app.test_client()
    admin = login(client, *ADMIN)
    client.put("/api/v1/contact", json={"hours": "Mo-Fr 8-17"}, headers=admin)
    client.put("/api/v1/auto-reply", json={"enabled": True, "text": TEXT}, headers=admin)
    created = client.post("/api/v1/conversations", json={}, headers=admin).json
    conversation = {
        "id": created["id"],
        "patient": {"Authorization": f"Bearer {created['patient_token']}"},
    }
    at(clock, 18, 15)  # Monday 15:00 in Berlin is 9:00 in New York: open there
    assert replies(write(client, conversation)) == 0
    at(clock, 18, 23, 30)  # 17:30 in New York: closed
    assert replies(write(client, conversation)) == 1
    app.extensions["medcell"].store.close()


def test_bad_settings_are_refused_and_change_nothing(client, admin_auth, staff_auth, practice):
    for body in (
        {"enabled": True},
        {"enabled": True, "text": "   "},
        {"enabled": "yes", "text": "x"},
        {"text": "x"},
        {"enabled": True, "text": "x" * 2001},
        {"enabled": True, "text": "x", "extra": 1},
    ):
        response = client.put("/api/v1/auto-reply", json=body, headers=admin_auth)
        assert response.status_code == 400, body
        assert set(response.json["error"]) == {"code", "message"}
    refused = client.put(
        "/api/v1/auto-reply", json={"enabled": False, "text": ""}, headers=staff_auth
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/auto-reply", headers=staff_auth).json["text"] == TEXT
    assert client.get("/api/v1/auto-reply").status_code == 401


def test_the_mark_cannot_be_taken_off_or_put_on_afterwards(
    app, client, practice, conversation, clock
):
    at(clock, 18, 19)
    write(client, conversation)
    staff_auth = login(client, *STAFF)
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    db = app.extensions["medcell"].store.conn()
    for forged in (
        "UPDATE messages SET staff_id = NULL WHERE staff_id = 0",  # off: a team message
        "UPDATE messages SET staff_id = 0 WHERE author = 'patient'",  # on a patient's message
    ):
        db.execute("SAVEPOINT forged")
        db.execute(forged)
        listed = client.get(url, headers=staff_auth)
        assert listed.status_code == 500 and listed.json["error"]["code"] == "record_damaged"
        db.execute("ROLLBACK TO forged")
        db.execute("RELEASE forged")
    assert [m["automatic"] for m in client.get(url, headers=staff_auth).json["messages"]] == [
        False,
        True,
    ]

"""Unread counts per staff account and read receipts both ways."""

from .conftest import ADMIN, login


def post(client, conv, who, body: str) -> str:
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/messages", json={"body": body}, headers=who
    )
    assert response.status_code == 201
    return response.json["id"]


def read(client, conv, who, after: str | None = None) -> dict:
    url = f"/api/v1/conversations/{conv['id']}/messages"
    response = client.get(url + (f"?after={after}" if after else ""), headers=who)
    assert response.status_code == 200
    return response.json


def unread(client, who) -> dict:
    response = client.get("/api/v1/unread", headers=who)
    assert response.status_code == 200
    return response.json


def test_patient_messages_are_unread_for_each_staff_account_until_it_reads_them(
    client, staff_auth, conversation
):
    admin = login(client, *ADMIN)
    post(client, conversation, conversation["patient"], "Frage 1")
    post(client, conversation, conversation["patient"], "Frage 2")
    assert unread(client, staff_auth) == {"conversations": {conversation["id"]: 2}, "total": 2}
    read(client, conversation, staff_auth)
    assert unread(client, staff_auth) == {"conversations": {}, "total": 0}
    # The colleague has not seen them yet.
    assert unread(client, admin)["conversations"] == {conversation["id"]: 2}


def test_own_messages_never_count_as_unread(client, staff_auth, conversation):
    post(client, conversation, staff_auth, "Guten Tag")
    assert unread(client, staff_auth)["total"] == 0
    assert unread(client, login(client, *ADMIN))["total"] == 0


def test_a_poll_marks_only_what_it_brought(client, staff_auth, conversation):
    first = post(client, conversation, conversation["patient"], "eins")
    read(client, conversation, staff_auth)
    post(client, conversation, conversation["patient"], "zwei")
    assert unread(client, staff_auth)["total"] == 1
    assert [m["body"] for m in read(client, conversation, staff_auth, after=first)["messages"]] == [
        "zwei"
    ]
    assert unread(client, staff_auth)["total"] == 0


def test_staff_see_read_once_the_patient_has_opened_the_messages(client, staff_auth, conversation):
    mine = post(client, conversation, staff_auth, "Befund ist da")
    before = read(client, conversation, staff_auth)
    assert before["messages"][0]["read"] is False and before["read_up_to"] is None
    read(client, conversation, conversation["patient"])
    after = read(client, conversation, staff_auth)
    assert after["messages"][0]["read"] is True and after["read_up_to"] == mine
    # Later ones are not read until the patient looks again.
    newer = post(client, conversation, staff_auth, "Noch etwas")
    latest = read(client, conversation, staff_auth, after=mine)
    assert [m["id"] for m in latest["messages"]] == [newer]
    assert latest["messages"][0]["read"] is False and latest["read_up_to"] == mine


def test_the_patient_sees_read_once_any_staff_account_has_opened_it(
    client, staff_auth, conversation
):
    mine = post(client, conversation, conversation["patient"], "Danke")
    assert read(client, conversation, conversation["patient"])["messages"][0]["read"] is False
    read(client, conversation, login(client, *ADMIN))
    seen = read(client, conversation, conversation["patient"])
    assert seen["messages"][0]["read"] is True and seen["read_up_to"] == mine


def test_expired_conversations_have_no_unread_and_leave_no_marks(app, client, conversation, clock):
    post(client, conversation, conversation["patient"], "Hallo")
    read(client, conversation, conversation["patient"])
    clock.advance(7 * 86400 + 1)
    assert unread(client, login(client, *ADMIN))["total"] == 0
    medcell = app.extensions["medcell"]
    assert medcell.conversations.delete_expired(medcell.store.conn()) == 1
    assert medcell.store.conn().execute("SELECT count(*) FROM read_marks").fetchone()[0] == 0


def test_patients_cannot_ask_for_unread_counts(client, conversation):
    assert client.get("/api/v1/unread", headers=conversation["patient"]).status_code == 403


def test_a_removed_account_leaves_no_marks_for_a_new_one_with_its_id(
    app, client, admin_auth, conversation
):
    created = client.post(
        "/api/v1/staff", json={"username": "temp", "role": "staff"}, headers=admin_auth
    ).json
    temp = login(client, "temp", created["password"])
    post(client, conversation, conversation["patient"], "Hallo")
    read(client, conversation, temp)
    assert client.delete("/api/v1/staff/temp", headers=admin_auth).status_code == 204
    again = client.post(
        "/api/v1/staff", json={"username": "temp2", "role": "staff"}, headers=admin_auth
    ).json
    assert unread(client, login(client, "temp2", again["password"]))["total"] == 1

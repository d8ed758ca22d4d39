"""A writer corrects or deletes their own message within minutes; the old text is gone."""

import io

import pytest

from services.facility.core.edits import EDIT_WINDOW_SECONDS
from tests.facility.conftest import ADMIN, login


def post(client, conversation, auth, body="Termin am Dienstag"):
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json={"body": body}, headers=auth
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def edit(client, conversation, msg_id, auth, body="Termin am Mittwoch"):
    url = f"/api/v1/conversations/{conversation['id']}/messages/{msg_id}"
    return client.put(url, json={"body": body}, headers=auth)


def remove(client, conversation, msg_id, auth):
    return client.delete(
        f"/api/v1/conversations/{conversation['id']}/messages/{msg_id}", headers=auth
    )


def listed(client, conversation, auth) -> list[dict]:
    response = client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=auth)
    assert response.status_code == 200, response.json
    return response.json["messages"]


@pytest.mark.parametrize("side", ["staff", "patient"])
def test_a_writer_corrects_their_message_and_both_sides_see_the_mark(
    client, staff_auth, conversation, side
):
    auth = staff_auth if side == "staff" else conversation["patient"]
    msg_id = post(client, conversation, auth)
    response = edit(client, conversation, msg_id, auth)
    assert response.status_code == 200, response.json
    assert response.json["id"] == msg_id and response.json["edited_at"]
    for reader in (staff_auth, conversation["patient"]):
        (message,) = listed(client, conversation, reader)
        assert message["body"] == "Termin am Mittwoch"
        assert message["edited_at"] == response.json["edited_at"]
        assert message["deleted_at"] is None


@pytest.mark.parametrize("side", ["staff", "patient"])
def test_a_writer_deletes_their_message_with_its_file(client, staff_auth, conversation, side):
    auth = staff_auth if side == "staff" else conversation["patient"]
    kept = post(client, conversation, auth, "bleibt")
    sent = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        headers=auth,
        data={"file": (io.BytesIO(b"%PDF-1.4 befund"), "befund.pdf"), "body": "Befund"},
    ).json
    msg_id = listed(client, conversation, auth)[-1]["id"]
    response = remove(client, conversation, msg_id, auth)
    assert response.status_code == 200, response.json
    for reader in (staff_auth, conversation["patient"]):
        messages = listed(client, conversation, reader)
        assert [m["id"] for m in messages] == [kept, msg_id]
        assert messages[0]["body"] == "bleibt"
        gone = messages[1]
        assert gone["body"] == "" and gone["attachments"] == []
        assert gone["deleted_at"] == response.json["deleted_at"]
    download = client.get(f"/api/v1/attachments/{sent['id']}", headers=staff_auth)
    assert download.status_code == 404
    # Deleted stays deleted: neither corrected nor deleted again.
    again = remove(client, conversation, msg_id, auth)
    assert again.status_code == 409 and again.json["error"]["code"] == "message_deleted"
    assert edit(client, conversation, msg_id, auth).json["error"]["code"] == "message_deleted"


def test_only_the_writer_may_change_a_message(client, staff_auth, conversation):
    by_staff = post(client, conversation, staff_auth)
    by_patient = post(client, conversation, conversation["patient"])
    colleague = login(client, *ADMIN)
    for msg_id, other in (
        (by_staff, conversation["patient"]),
        (by_staff, colleague),
        (by_patient, staff_auth),
    ):
        for response in (
            edit(client, conversation, msg_id, other),
            remove(client, conversation, msg_id, other),
        ):
            assert response.status_code == 403
            assert response.json["error"]["code"] == "forbidden"
    # Nothing changed.
    bodies = [m["body"] for m in listed(client, conversation, staff_auth)]
    assert bodies == ["Termin am Dienstag", "Termin am Dienstag"]


def test_the_time_to_change_a_message_runs_out(client, staff_auth, conversation, clock):
    msg_id = post(client, conversation, staff_auth)
    clock.advance(EDIT_WINDOW_SECONDS - 1)
    assert edit(client, conversation, msg_id, staff_auth).status_code == 200
    clock.advance(2)
    for response in (
        edit(client, conversation, msg_id, staff_auth, "zu spät"),
        remove(client, conversation, msg_id, staff_auth),
    ):
        assert response.status_code == 409
        assert response.json["error"]["code"] == "edit_window_closed"
        assert "10 minutes" in response.json["error"]["message"]
    assert listed(client, conversation, staff_auth)[0]["body"] == "Termin am Mittwoch"


def test_bad_input_is_refused_and_loses_nothing(client, staff_auth, conversation, app):
    msg_id = post(client, conversation, staff_auth)
    max_chars = app.extensions["medcell"].config.max_body_chars
    for body in ({}, {"body": ""}, {"body": "   "}, {"body": 5}, {"body": "x", "extra": 1}):
        url = f"/api/v1/conversations/{conversation['id']}/messages/{msg_id}"
        response = client.put(url, json=body, headers=staff_auth)
        assert response.status_code == 400, body
        assert set(response.json["error"]) == {"code", "message"}
    too_long = edit(client, conversation, msg_id, staff_auth, "x" * (max_chars + 1))
    assert too_long.status_code == 400
    # Unknown and malformed message ids, another conversation's message.
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth).json
    foreign = post(client, {"id": other["id"]}, staff_auth)
    for bad in ("A" * 22, foreign):
        assert edit(client, conversation, bad, staff_auth).status_code == 404
        assert remove(client, conversation, bad, staff_auth).status_code == 404
    assert remove(client, conversation, "kurz", staff_auth).status_code == 404
    unauthenticated = remove(client, conversation, msg_id, {})
    assert unauthenticated.status_code == 401
    assert [m["body"] for m in listed(client, conversation, staff_auth)] == ["Termin am Dienstag"]
    assert listed(client, {"id": other["id"]}, staff_auth)[0]["body"] == "Termin am Dienstag"


def test_a_patient_cannot_reach_another_conversations_message(client, staff_auth, conversation):
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth).json
    other_patient = {"Authorization": f"Bearer {other['patient_token']}"}
    msg_id = post(client, {"id": other["id"]}, other_patient)
    url = f"/api/v1/conversations/{other['id']}/messages/{msg_id}"
    assert client.delete(url, headers=conversation["patient"]).status_code == 404
    assert listed(client, {"id": other["id"]}, other_patient)[0]["deleted_at"] is None


def test_the_inbox_previews_the_message_before_a_deleted_one(client, staff_auth, conversation):
    post(client, conversation, conversation["patient"], "Knie tut weh")
    msg_id = post(client, conversation, conversation["patient"], "Falsch geschickt")
    assert remove(client, conversation, msg_id, conversation["patient"]).status_code == 200
    (row,) = client.get("/api/v1/inbox", headers=staff_auth).json["conversations"]
    assert row["last_message"]["preview"] == "Knie tut weh"


def polled(client, conversation, auth, after: str, since: int | None) -> dict:
    query = f"?after={after}" + (f"&since={since}" if since is not None else "")
    response = client.get(
        f"/api/v1/conversations/{conversation['id']}/messages{query}", headers=auth
    )
    assert response.status_code == 200, response.json
    return response.json


def test_a_poll_with_since_brings_the_corrections_and_deletions_of_messages_shown(
    client, staff_auth, conversation, clock
):
    patient = conversation["patient"]
    first, second = post(client, conversation, staff_auth), post(client, conversation, patient)
    third = post(client, conversation, staff_auth, "unverändert")
    # The patient's page showed all three; its cursor came with them.
    since = polled(client, conversation, patient, first, None)["since"]
    assert isinstance(since, int)
    clock.advance(60)
    assert polled(client, conversation, patient, third, since)["messages"] == []

    assert edit(client, conversation, first, staff_auth).status_code == 200
    assert remove(client, conversation, second, patient).status_code == 200
    answer = polled(client, conversation, patient, third, since)
    changed = {m["id"]: m for m in answer["messages"]}
    assert sorted(changed) == sorted([first, second])  # not the unchanged third
    assert changed[first]["body"] == "Termin am Mittwoch" and changed[first]["edited_at"]
    assert changed[second]["body"] == "" and changed[second]["deleted_at"]
    # Without since, a poll brings only what is new, as before.
    assert polled(client, conversation, patient, third, None)["messages"] == []
    # The next cursor reaches a few seconds back (a write still open at the read), so the next
    # poll brings them once more; the one after the margin has passed does not.
    later = answer["since"]
    assert later > since
    clock.advance(10)
    again = polled(client, conversation, patient, third, later)
    assert sorted(m["id"] for m in again["messages"]) == sorted([first, second])
    assert polled(client, conversation, patient, third, again["since"])["messages"] == []
    # A new message comes with the changes; the staff's own side sees the same.
    fourth = post(client, conversation, patient, "neu")
    by_staff = polled(client, conversation, staff_auth, third, since)["messages"]
    assert [m["id"] for m in by_staff] == [first, second, fourth]


def test_a_bad_since_is_refused_in_the_contracts_shape(client, staff_auth, conversation):
    msg_id = post(client, conversation, staff_auth)
    url = f"/api/v1/conversations/{conversation['id']}/messages?after={msg_id}"
    for bad in ("-1", "soon", "1.5", "", "1&since=2", "9" * 19):
        response = client.get(f"{url}&since={bad}", headers=staff_auth)
        assert response.status_code == 400, bad
        assert set(response.json["error"]) == {"code", "message"}
        assert "since" in response.json["error"]["message"]
    # A misspelt parameter is named, not ignored.
    misspelt = client.get(f"{url}&sinse=5", headers=staff_auth)
    assert misspelt.status_code == 400
    assert misspelt.json["error"]["message"] == "unknown query parameter(s): sinse"
    assert [m["body"] for m in listed(client, conversation, staff_auth)] == ["Termin am Dienstag"]

"""The team inbox over the API: patient, last message, who wrote it, waiting since, unread."""

import io
import logging

from services.facility.core import inbox
from tests.facility.conftest import login

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def open_for(client, staff_auth, title="Knie", name=None) -> dict:
    body = {"title": title}
    if name:
        body["reference"] = {"name": name}
    conv = client.post("/api/v1/conversations", json=body, headers=staff_auth).json
    return {**conv, "patient": {"Authorization": f"Bearer {conv['patient_token']}"}}


def say(client, conv, who, text):
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/messages", json={"body": text}, headers=who
    )
    assert response.status_code == 201, response.json
    return response.json


def rows(client, auth, **params) -> list[dict]:
    response = client.get("/api/v1/inbox", headers=auth, query_string=params)
    assert response.status_code == 200, response.json
    return response.json["conversations"]


def test_a_patient_message_shows_its_patient_preview_and_since_when_they_wait(
    client, staff_auth, clock
):
    conv = open_for(client, staff_auth, "Knie", "Erika Mustermann")
    first = say(client, conv, conv["patient"], "Guten Tag,\n  das Knie   schmerzt wieder.")
    clock.advance(60)
    say(client, conv, conv["patient"], "Und es ist geschwollen.")
    (row,) = rows(client, staff_auth)
    assert row["patient_name"] == "Erika Mustermann"
    assert row["title"] == "Knie"
    assert row["last_message"]["author"] == "patient"
    assert row["last_message"]["author_name"] is None
    assert row["last_message"]["preview"] == "Und es ist geschwollen."
    assert row["waiting_since"] == first["created_at"]  # since the first unanswered one
    assert row["unread"] == 2


def test_a_reply_from_the_team_ends_the_wait_and_names_who_wrote_it(client, staff_auth, admin_auth):
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], "Frage")
    say(client, conv, staff_auth, "Antwort vom Team")
    (row,) = rows(client, admin_auth)
    assert row["waiting_since"] is None
    assert row["last_message"]["author"] == "staff"
    assert row["last_message"]["author_name"] == "nurse"  # no display name set: the login
    assert row["last_message"]["preview"] == "Antwort vom Team"


def test_unread_is_per_account_and_ends_once_the_messages_were_read(client, staff_auth, admin_auth):
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], "Hallo")
    client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=staff_auth)
    assert rows(client, staff_auth)[0]["unread"] == 0
    assert rows(client, admin_auth)[0]["unread"] == 1
    assert rows(client, staff_auth)[0]["waiting_since"] is not None, "read is not answered"


def test_a_long_message_is_previewed_on_one_line_cut_at_a_word(client, staff_auth):
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], "Wort\n" * 100)
    preview = rows(client, staff_auth)[0]["last_message"]["preview"]
    assert len(preview) <= inbox.PREVIEW_CHARS and "\n" not in preview
    assert preview.endswith("Wort…")


def test_a_file_without_text_is_shown_by_its_name_and_a_new_conversation_has_no_message(
    client, staff_auth, clock
):
    empty = open_for(client, staff_auth, "Leer")
    clock.advance(1)
    conv = open_for(client, staff_auth, "Foto")
    client.post(
        f"/api/v1/conversations/{conv['id']}/attachments",
        data={"file": (io.BytesIO(PNG), "knie.png")},
        headers=conv["patient"],
    )
    photo, nothing = rows(client, staff_auth)
    assert photo["last_message"]["files"] == ["knie.png"] and photo["last_message"]["preview"] == ""
    assert nothing["id"] == empty["id"] and nothing["last_message"] is None
    assert nothing["waiting_since"] is None and nothing["unread"] == 0


def test_filters_unread_and_waiting_and_the_search(client, staff_auth, clock):
    asked = open_for(client, staff_auth, "Rezept", "Anna Alt")
    say(client, asked, asked["patient"], "Bitte ein Rezept")
    clock.advance(1)
    answered = open_for(client, staff_auth, "Befund", "Bernd Berg")
    say(client, answered, answered["patient"], "Befund?")
    say(client, answered, staff_auth, "Liegt vor.")
    client.get(f"/api/v1/conversations/{answered['id']}/messages", headers=staff_auth)
    clock.advance(1)
    open_for(client, staff_auth, "Still")
    assert [r["id"] for r in rows(client, staff_auth)][1:] == [answered["id"], asked["id"]]
    assert [r["id"] for r in rows(client, staff_auth, filter="unread")] == [asked["id"]]
    assert [r["id"] for r in rows(client, staff_auth, filter="waiting")] == [asked["id"]]
    assert [r["id"] for r in rows(client, staff_auth, q="bernd")] == [answered["id"]]
    assert rows(client, staff_auth, q="niemand") == []


def test_bad_filters_are_refused_with_the_error_shape(client, staff_auth):
    for params in ({"filter": "mine-and-yours"}, {"q": "x" * 101}):
        response = client.get("/api/v1/inbox", headers=staff_auth, query_string=params)
        assert response.status_code == 400
        assert set(response.json["error"]) == {"code", "message"}


def test_only_staff_see_the_inbox(client, staff_auth):
    conv = open_for(client, staff_auth)
    assert client.get("/api/v1/inbox", headers=conv["patient"]).status_code == 403
    assert client.get("/api/v1/inbox").status_code == 401


def test_an_expired_conversation_leaves_the_inbox(client, staff_auth, clock):
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], "Hallo")
    clock.advance(8 * 86400)
    assert rows(client, login(client, "nurse", "another long secret")) == []


def test_the_preview_is_neither_stored_nor_logged(app, client, staff_auth, caplog, capfd):
    marker = "PREVIEW-MARKER-Jt83qx"
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], marker)
    caplog.set_level(logging.DEBUG)
    assert rows(client, staff_auth)[0]["last_message"]["preview"] == marker
    assert marker not in caplog.text
    out, err = capfd.readouterr()
    assert marker not in out + err
    data_dir = app.extensions["medcell"].config.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert marker.encode() not in stored


def test_an_altered_last_message_is_shown_as_such_and_the_inbox_still_lists(
    app, client, staff_auth
):
    conv = open_for(client, staff_auth)
    say(client, conv, conv["patient"], "Hallo")
    app.extensions["medcell"].store.conn().execute(
        "UPDATE messages SET author = 'staff' WHERE conversation_id = ?", (conv["id"],)
    )
    (row,) = rows(client, staff_auth)
    assert row["last_message"]["preview"] == ""


def test_preview_cuts_long_words_too():
    assert inbox.preview("x" * 500) == "x" * (inbox.PREVIEW_CHARS - 1) + "…"
    assert inbox.preview("  a \t b\n") == "a b"


def test_a_colleague_sees_the_team_inbox_too(client, staff_auth):
    conv = open_for(client, staff_auth, "Gemeinsam")
    colleague = login(client, "admin", "correct horse battery")
    assert [r["id"] for r in rows(client, colleague)] == [conv["id"]]

"""The facility API as docs/api.md fixes it, and clear errors that change nothing."""

import io
import re

import pytest

from services.facility.core import passwords
from services.facility.core.store import Store

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def msgs(client, conv, headers):
    return client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=headers)


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_login_gives_a_token_and_wrong_password_does_not(client):
    ok = client.post("/api/v1/login", json={"username": "nurse", "password": "another long secret"})
    assert ok.status_code == 200 and len(ok.json["token"]) >= 43
    bad = client.post("/api/v1/login", json={"username": "nurse", "password": "wrong"})
    assert bad.status_code == 401 and bad.json["error"]["code"] == "unauthorized"


def test_staff_opens_conversation_and_both_sides_talk(client, staff_auth, conversation):
    assert conversation["patient_url"].endswith("/p/" + conversation["patient_token"])
    staff = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "Wie geht es dem Knie?"},
        headers=staff_auth,
    )
    assert staff.status_code == 201 and staff.json["author"] == "staff"
    assert ISO.match(staff.json["created_at"])
    patient = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "Besser, danke."},
        headers=conversation["patient"],
    )
    assert patient.status_code == 201 and patient.json["author"] == "patient"
    for headers in (staff_auth, conversation["patient"]):
        listed = msgs(client, conversation, headers).json["messages"]
        assert [(m["author"], m["body"]) for m in listed] == [
            ("staff", "Wie geht es dem Knie?"),
            ("patient", "Besser, danke."),
        ]
        assert all(m["attachments"] == [] for m in listed)


def test_conversation_list_shows_title_activity_and_expiry(client, staff_auth, conversation, clock):
    clock.advance(60)
    client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "hi"},
        headers=staff_auth,
    )
    listed = client.get("/api/v1/conversations", headers=staff_auth).json["conversations"]
    assert [c["title"] for c in listed] == ["Knee follow-up"]
    item = listed[0]
    assert ISO.match(item["last_activity"]) and ISO.match(item["expires_at"])
    assert item["expires_at"] > item["last_activity"]


def test_title_is_optional(client, staff_auth):
    response = client.post("/api/v1/conversations", headers=staff_auth)
    assert response.status_code == 201
    response = client.post("/api/v1/conversations", json={}, headers=staff_auth)
    assert response.status_code == 201


def test_attachment_round_trip_and_listing(client, staff_auth, conversation):
    content = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4000  # a JPEG's start, ~1 MB
    up = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(content), "Ausschlag.jpg", "image/jpeg")},
        headers=conversation["patient"],
    )
    assert up.status_code == 201
    assert up.json["filename"] == "Ausschlag.jpg" and up.json["size"] == len(content)
    down = client.get(f"/api/v1/attachments/{up.json['id']}", headers=staff_auth)
    assert down.status_code == 200 and down.data == content
    assert down.headers["Content-Type"] == "image/jpeg"
    listed = msgs(client, conversation, staff_auth).json["messages"]
    assert listed[-1]["author"] == "patient"
    assert listed[-1]["attachments"][0]["id"] == up.json["id"]


@pytest.mark.parametrize(
    ("content", "declared"),
    [
        (b"<script>alert(1)</script>", "image/png"),  # HTML declared as a photo
        (b"<script>alert(1)</script>", "application/octet-stream"),  # an unknown type
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "application/pdf"),  # a PNG declared as a PDF
        (b"%PDF-1.4 Befund", "text/html"),  # a PDF declared as a page
    ],
)
def test_api_refuses_uploads_that_are_not_what_they_claim_or_not_allowed(
    client, staff_auth, conversation, content, declared
):
    up = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(content), "x.png", declared)},
        headers=staff_auth,
    )
    assert up.status_code == 415
    assert up.json["error"]["code"] == "unsupported_media_type"
    assert msgs(client, conversation, staff_auth).json["messages"] == []


def test_the_stored_type_is_the_one_the_bytes_show(client, staff_auth, conversation):
    up = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(b"GIF89a" + b"\x00" * 32), "scan", "application/octet-stream")},
        headers=staff_auth,
    )
    assert up.status_code == 201
    down = client.get(f"/api/v1/attachments/{up.json['id']}", headers=conversation["patient"])
    assert down.headers["Content-Type"] == "image/gif"
    assert "sandbox" in down.headers["Content-Security-Policy"]
    listed = msgs(client, conversation, staff_auth).json["messages"]
    assert listed[0]["attachments"][0]["content_type"] == "image/gif"


def test_delete_removes_conversation_messages_attachments_and_token(
    client, staff_auth, conversation
):
    up = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(b"\x89PNG\r\n\x1a\nphoto"), "p.png")},
        headers=staff_auth,
    )
    response = client.delete(
        f"/api/v1/conversations/{conversation['id']}", headers=conversation["patient"]
    )
    assert response.status_code == 200
    receipt = response.json["receipt"]
    assert receipt["reason"] == "patient" and receipt["verified"] is True
    assert receipt["counts"] == {"messages": 1, "attachments": 1, "record_keys": 3}
    assert msgs(client, conversation, staff_auth).status_code == 404
    assert client.get(f"/api/v1/attachments/{up.json['id']}", headers=staff_auth).status_code == 404
    assert msgs(client, conversation, conversation["patient"]).status_code == 401
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []
    again = client.delete(f"/api/v1/conversations/{conversation['id']}", headers=staff_auth)
    assert again.status_code == 404


def test_admin_deletes_all_patient_data_with_confirmation(
    client, admin_auth, staff_auth, conversation
):
    refused = client.delete("/api/v1/conversations", headers=admin_auth)
    assert refused.status_code == 400
    assert len(client.get("/api/v1/conversations", headers=staff_auth).json["conversations"]) == 1
    done = client.delete("/api/v1/conversations?confirm=alpha", headers=admin_auth)
    assert done.status_code == 200 and done.json["deleted"] == 1
    assert done.json["receipt"]["reason"] == "facility_wipe"
    assert done.json["receipt"]["verified"] is True
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []
    assert msgs(client, conversation, conversation["patient"]).status_code == 401


def test_admin_manages_staff_and_retention(client, admin_auth):
    created = client.post("/api/v1/staff", json={"username": "mfa.meier"}, headers=admin_auth)
    assert created.status_code == 201 and len(created.json["password"]) >= 12
    names = [s["username"] for s in client.get("/api/v1/staff", headers=admin_auth).json["staff"]]
    assert "mfa.meier" in names
    new = client.post(
        "/api/v1/login", json={"username": "mfa.meier", "password": created.json["password"]}
    )
    assert new.status_code == 200
    assert (
        client.post("/api/v1/staff", json={"username": "mfa.meier"}, headers=admin_auth).status_code
        == 409
    )
    assert client.delete("/api/v1/staff/mfa.meier", headers=admin_auth).status_code == 204
    assert client.delete("/api/v1/staff/admin", headers=admin_auth).status_code == 409

    assert (
        client.put("/api/v1/settings", json={"retention": "3d"}, headers=admin_auth).json[
            "retention"
        ]
        == "3d"
    )
    assert (
        client.put("/api/v1/settings", json={"retention": "8d"}, headers=admin_auth).status_code
        == 400
    )
    assert client.get("/api/v1/settings", headers=admin_auth).json["retention_seconds"] == 259200


def test_password_change_ends_other_sessions(client, staff_auth):
    other = client.post(
        "/api/v1/login", json={"username": "nurse", "password": "another long secret"}
    ).json["token"]
    response = client.post(
        "/api/v1/password",
        headers=staff_auth,
        json={"current_password": "another long secret", "new_password": "a brand new passphrase"},
    )
    assert response.status_code == 204
    assert (
        client.get(
            "/api/v1/conversations", headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/v1/login", json={"username": "nurse", "password": "a brand new passphrase"}
        ).status_code
        == 200
    )


def test_logout_revokes_the_token(client, staff_auth):
    assert client.post("/api/v1/logout", headers=staff_auth).status_code == 204
    assert client.get("/api/v1/conversations", headers=staff_auth).status_code == 401


def test_staff_tokens_expire(client, staff_auth, clock):
    clock.advance(12 * 3600 + 1)
    assert client.get("/api/v1/conversations", headers=staff_auth).status_code == 401


@pytest.mark.parametrize(
    "payload,status",
    [
        ({"body": ""}, 400),
        ({"body": "   "}, 400),
        ({"body": 42}, 400),
        ({"body": None}, 400),
        ({"text": "wrong field"}, 400),
        ({"body": "x" * 10_001}, 400),
        ({"body": "nul\x00byte"}, 400),
        ([1, 2], 400),
        ("just a string", 400),
    ],
)
def test_bad_message_input_is_refused_and_changes_nothing(
    client, staff_auth, conversation, payload, status
):
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json=payload, headers=staff_auth
    )
    assert response.status_code == status
    assert set(response.json["error"]) == {"code", "message"}
    assert msgs(client, conversation, staff_auth).json["messages"] == []


def test_malformed_json_is_a_clear_400(client, staff_auth, conversation):
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        data=b"{not json",
        content_type="application/json",
        headers=staff_auth,
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_request"


def test_invalid_utf8_is_refused(client, staff_auth, conversation):
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        data=b'{"body": "\xff\xfe"}',
        content_type="application/json",
        headers=staff_auth,
    )
    assert response.status_code == 400


def test_oversized_attachment_is_413_and_stores_nothing(make_app, staff_auth):
    app = make_app(
        "small",
    )
    app.extensions["medcell"].conversations.max_attachment_bytes = 1000
    client = app.test_client()
    from .conftest import STAFF, login

    headers = login(client, *STAFF)
    conv = client.post("/api/v1/conversations", json={}, headers=headers).json
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/attachments",
        data={"file": (io.BytesIO(b"x" * 1001), "big.bin")},
        headers=headers,
    )
    assert response.status_code == 413
    assert msgs(client, conv, headers).json["messages"] == []


def test_attachment_without_file_field_is_400(client, staff_auth, conversation):
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"other": "x"},
        headers=staff_auth,
    )
    assert response.status_code == 400
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        json={"file": "x"},
        headers=staff_auth,
    )
    assert response.status_code == 400


def test_overlong_title_is_refused(client, staff_auth):
    response = client.post("/api/v1/conversations", json={"title": "t" * 201}, headers=staff_auth)
    assert response.status_code == 400
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []


def test_too_many_failed_logins_are_throttled(client):
    for _ in range(5):
        client.post("/api/v1/login", json={"username": "nurse", "password": "wrong"})
    response = client.post(
        "/api/v1/login", json={"username": "nurse", "password": "another long secret"}
    )
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0


def test_too_many_bad_tokens_are_throttled(client):
    for _ in range(30):
        client.get("/api/v1/conversations", headers={"Authorization": "Bearer nope"})
    response = client.get("/api/v1/conversations", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 429


def test_unknown_route_and_method_use_the_error_shape(client):
    assert client.get("/api/v1/nothing").json["error"]["code"] == "not_found"
    assert client.put("/api/v1/login").json["error"]["code"] == "method_not_allowed"


def test_patient_sees_the_conversation_without_the_staff_title(client, staff_auth, conversation):
    mine = client.get(
        f"/api/v1/conversations/{conversation['id']}", headers=conversation["patient"]
    )
    assert mine.status_code == 200 and "title" not in mine.json
    assert set(mine.json) == {"id", "last_activity", "expires_at"}
    staff = client.get(f"/api/v1/conversations/{conversation['id']}", headers=staff_auth)
    assert staff.json["title"] == "Knee follow-up"


def test_a_burst_of_parallel_wrong_logins_is_throttled_after_five(app):
    import threading

    answers = []

    def guess() -> None:
        response = app.test_client().post(
            "/api/v1/login", json={"username": "nurse", "password": "not the password"}
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [401] * 5 + [429] * 7


def test_password_checks_wait_while_another_process_holds_the_hashing_slot(tmp_path):
    """Each argon2id hash takes 64 MiB: the workers of one container take turns."""
    import fcntl
    import os
    import threading

    lock = tmp_path / "argon2.lock"
    db = Store(tmp_path / "facility.db")
    db.hash_lock = lock
    conn = db.connect()
    stored = passwords.hash_password(conn, "correct horse battery")
    other_worker = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    results = []
    try:
        fcntl.flock(other_worker, fcntl.LOCK_EX)  # what another worker's hash holds
        check = threading.Thread(
            target=lambda: results.append(
                passwords.verify_password(conn, stored, "correct horse battery")
            )
        )
        check.start()
        check.join(timeout=1)
        assert check.is_alive() and results == [], "a hash ran while another process hashed"
        fcntl.flock(other_worker, fcntl.LOCK_UN)
        check.join(timeout=30)
        assert results == [True]
    finally:
        os.close(other_worker)
        conn.close()


def test_large_bodies_are_refused_unread_except_on_upload_routes(client, staff_auth, conversation):
    big = {"file": (io.BytesIO(b"x" * 300_000), "big.bin")}
    # An anonymous multipart post to the login is refused by size, before anything is parsed.
    assert client.post("/api/v1/login", data=big).status_code == 413
    assert (
        client.post("/login", data={"file": (io.BytesIO(b"x" * 300_000), "b.bin")}).status_code
        == 413
    )
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(b"%PDF-" + b"x" * 299_995), "scan.pdf")},
        headers=staff_auth,
    )
    assert response.status_code == 201 and response.json["size"] == 300_000

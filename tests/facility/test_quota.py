"""Storage quotas: per facility and per conversation, set by the operator, seen by admins."""

import io
import json
import os
import sqlite3

import pytest
from click.testing import CliRunner

from services.facility.__main__ import cli as manage
from services.facility.core import migrations, quota, throttle
from tests.facility.conftest import login

MiB = 1024 * 1024


def upload(client, conv_id: str, headers: dict, size: int, name: str = "scan.pdf"):
    data = b"%PDF-" + os.urandom(size - 5)
    return client.post(
        f"/api/v1/conversations/{conv_id}/attachments",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def counts(app) -> tuple[int, int, int]:
    conn = app.extensions["medcell"].store.conn()
    return tuple(
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("messages", "attachments", "attachment_chunks")
    )


def set_quotas(app, facility: str | None = None, conversation: str | None = None) -> None:
    quota.set_quotas(app.extensions["medcell"].store.conn(), facility, conversation)


def fill_to_quota(app) -> None:
    """Set the facility's quota to what it already uses (rounded down): it is at 100 %."""
    used = quota.facility_used(app.extensions["medcell"].store.conn())
    set_quotas(app, facility=f"{used // 1024}KiB")


def test_new_facility_has_the_default_quotas(client, admin_auth):
    body = client.get("/api/v1/usage", headers=admin_auth).json
    assert body["quota_bytes"] == 2 * 1024**3 and body["quota"] == "2GiB"
    assert body["conversation_quota_bytes"] == 200 * MiB and body["conversation_quota"] == "200MiB"
    assert 0 < body["used_bytes"] < body["quota_bytes"]
    assert body["largest_conversations"] == []


def test_upload_over_the_conversation_quota_is_413_and_stores_nothing(
    app, client, staff_auth, conversation
):
    set_quotas(app, conversation="1MiB")
    conv = conversation["id"]
    assert upload(client, conv, staff_auth, 600 * 1024).status_code == 201
    before = counts(app)
    refused = upload(client, conv, conversation["patient"], 600 * 1024)
    assert refused.status_code == 413
    assert refused.json["error"]["code"] == "conversation_full"
    assert counts(app) == before
    # Another conversation still has its own room.
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth).json["id"]
    assert upload(client, other, staff_auth, 600 * 1024).status_code == 201


def test_messages_count_towards_the_conversation_quota(app, client, staff_auth, conversation):
    set_quotas(app, conversation="1MiB")
    conv = conversation["id"]
    assert upload(client, conv, staff_auth, MiB - 8 * 1024).status_code == 201
    refused = client.post(
        f"/api/v1/conversations/{conv}/messages", json={"body": "x" * 9000}, headers=staff_auth
    )
    assert refused.status_code == 413 and refused.json["error"]["code"] == "conversation_full"
    short = client.post(
        f"/api/v1/conversations/{conv}/messages", json={"body": "ok"}, headers=staff_auth
    )
    assert short.status_code == 201


def test_full_facility_answers_507_reads_and_deletes_then_takes_writes_again(
    app, client, staff_auth, conversation
):
    conv = conversation["id"]
    for _ in range(3):
        assert upload(client, conv, staff_auth, 512 * 1024).status_code == 201
    fill_to_quota(app)
    before = counts(app)
    refused = upload(client, conv, conversation["patient"], 512 * 1024)
    assert refused.status_code == 507
    assert refused.json["error"]["code"] == "facility_full"
    assert "nothing was stored" in refused.json["error"]["message"]
    text = client.post(
        f"/api/v1/conversations/{conv}/messages", json={"body": "hi"}, headers=staff_auth
    )
    assert text.status_code == 507
    new = client.post("/api/v1/conversations", json={"title": "t"}, headers=staff_auth)
    assert new.status_code == 507
    assert counts(app) == before
    # Reading works at 100 %, and so does logging in and deleting.
    listed = client.get(f"/api/v1/conversations/{conv}/messages", headers=conversation["patient"])
    assert listed.status_code == 200 and len(listed.json["messages"]) == 3
    again = login(client, "nurse", "another long secret")
    assert client.delete(f"/api/v1/conversations/{conv}", headers=again).status_code in (200, 204)
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth)
    assert other.status_code == 201
    assert upload(client, other.json["id"], staff_auth, 512 * 1024).status_code == 201


def test_usage_shows_largest_conversations_as_numbers_only(client, admin_auth, staff_auth):
    big = client.post("/api/v1/conversations", json={"title": "Secret title"}, headers=staff_auth)
    small = client.post("/api/v1/conversations", json={"title": "Other"}, headers=staff_auth)
    upload(client, big.json["id"], staff_auth, 300 * 1024, name="befund-mueller.pdf")
    client.post(
        f"/api/v1/conversations/{small.json['id']}/messages",
        json={"body": "Kniebeschwerden"},
        headers=staff_auth,
    )
    response = client.get("/api/v1/usage", headers=admin_auth)
    largest = response.json["largest_conversations"]
    assert [c["attachments"] for c in largest] == [1, 0]
    assert largest[0]["bytes"] >= 300 * 1024 > largest[1]["bytes"] > 0
    raw = response.get_data(as_text=True)
    for secret in ("Secret", "Other", "befund", "Knie", big.json["id"], small.json["id"]):
        assert secret not in raw


def test_usage_is_for_admins_only(client, staff_auth, conversation):
    assert client.get("/api/v1/usage", headers=staff_auth).status_code == 403
    assert client.get("/api/v1/usage", headers=conversation["patient"]).status_code == 403
    assert client.get("/api/v1/usage").status_code == 401


def test_admins_cannot_change_the_quota_in_the_app(client, admin_auth):
    refused = client.put("/api/v1/settings", json={"quota": "100GiB"}, headers=admin_auth)
    assert refused.status_code == 400
    assert client.get("/api/v1/usage", headers=admin_auth).json["quota"] == "2GiB"


def test_patient_uploads_are_limited_per_link(app, client, staff_auth, conversation, clock):
    conv, patient = conversation["id"], conversation["patient"]
    files, _, window = throttle.UPLOAD_LIMIT
    for _ in range(files):
        assert upload(client, conv, patient, 1024).status_code == 201
    refused = upload(client, conv, patient, 1024)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= window + 1
    before = counts(app)
    assert upload(client, conv, patient, 1024).status_code == 429
    assert counts(app) == before
    # Staff are not limited, nor is the patient of another conversation.
    assert upload(client, conv, staff_auth, 1024).status_code == 201
    other = client.post("/api/v1/conversations", json={}, headers=staff_auth).json
    other_patient = {"Authorization": f"Bearer {other['patient_token']}"}
    assert upload(client, other["id"], other_patient, 1024).status_code == 201
    clock.advance(window + 1)
    client.post(f"/api/v1/conversations/{conv}/messages", json={"body": "x"}, headers=staff_auth)
    assert upload(client, conv, patient, 1024).status_code == 201


def test_patient_upload_bytes_are_limited_per_link(app, conversation):
    conn = app.extensions["medcell"].store.conn()
    _, volume, _ = throttle.UPLOAD_LIMIT
    now = app.extensions["medcell"].clock()
    throttle.count_upload(conn, conversation["id"], volume - 10, now)
    with pytest.raises(throttle.TooManyRequests):
        throttle.count_upload(conn, conversation["id"], 11, now)


def test_upload_counters_go_with_their_conversation(app, client, conversation):
    upload(client, conversation["id"], conversation["patient"], 1024)
    conn = app.extensions["medcell"].store.conn()
    for table in ("upload_throttle", "conversation_usage"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1
    client.delete(f"/api/v1/conversations/{conversation['id']}", headers=conversation["patient"])
    for table in ("upload_throttle", "conversation_usage"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_upgrade_counts_what_existing_conversations_hold(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for script in migrations.MIGRATIONS[:2]:
        for statement in migrations._statements(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO conversations VALUES ('c1', 1, 1, x'00', x'01', NULL, 0)")
    conn.execute("INSERT INTO conversations VALUES ('c2', 1, 1, x'00', x'02', NULL, 0)")
    conn.execute("INSERT INTO messages VALUES ('m1', 'c1', 'staff', 1, ?)", (bytes(100),))
    conn.execute("INSERT INTO attachments VALUES ('a1', 'c1', 'm1', 5000, 1, x'00')")
    migrations.apply(conn)
    assert dict(conn.execute("SELECT conversation_id, bytes FROM conversation_usage")) == {
        "c1": 5100,
        "c2": 0,
    }


def test_openapi_documents_507_for_writes_and_the_usage_endpoint(client):
    doc = client.get("/api/v1/openapi.json").json
    for path, method in [
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations/{conv_id}/messages", "post"),
        ("/api/v1/conversations/{conv_id}/attachments", "post"),
    ]:
        assert "507" in doc["paths"][path][method]["responses"]
    assert "507" not in doc["paths"]["/api/v1/conversations/{conv_id}/messages"]["get"]["responses"]
    assert "200" in doc["paths"]["/api/v1/usage"]["get"]["responses"]


def test_operator_commands_set_and_show_the_quotas(app, tmp_path):
    config = app.extensions["medcell"].config
    env = {
        "MEDCELL_FACILITY": config.facility,
        "MEDCELL_DATA_DIR": str(config.data_dir),
        "MEDCELL_KEY_DIR": str(config.key_dir),
    }
    runner = CliRunner()
    result = runner.invoke(
        manage, ["set-quota", "--facility", "5GiB", "--conversation", "300MiB"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["quota_bytes"] == 5 * 1024**3
    shown = json.loads(runner.invoke(manage, ["usage"], env=env).output)
    assert shown["quota"] == "5GiB" and shown["conversation_quota"] == "300MiB"
    bad = runner.invoke(manage, ["set-quota", "--facility", "5GB"], env=env)
    assert bad.exit_code != 0 and "KiB, MiB, GiB or TiB" in bad.output
    conn = sqlite3.connect(config.database)
    assert dict(conn.execute("SELECT name, value FROM settings WHERE name LIKE '%quota'")) == {
        "quota": str(5 * 1024**3),
        "conversation_quota": str(300 * 1024**2),
    }

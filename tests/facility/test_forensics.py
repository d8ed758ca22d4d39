"""Raw bytes of the data files: nothing readable stored, nothing of a deleted conversation left."""

import io
import sqlite3
from pathlib import Path

MARKERS = {
    "title": "MARKER-TITLE-Zq81xv",
    "staff": "MARKER-STAFF-MESSAGE-Hq27rt",
    "patient": "MARKER-PATIENT-MESSAGE-Kp55mw",
    "file": "MARKER-ATTACHMENT-CONTENT-Wd09bn",
    "filename": "MARKER-FILENAME-Rt44qa.pdf",
}


def raw_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def flow(client, staff_auth, clock) -> dict:
    # The test clock stands still; move it so this conversation's timestamps are its own.
    clock.advance(1.000321)
    conv = client.post(
        "/api/v1/conversations", json={"title": MARKERS["title"]}, headers=staff_auth
    ).json
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    base = f"/api/v1/conversations/{conv['id']}"
    client.post(f"{base}/messages", json={"body": MARKERS["staff"]}, headers=staff_auth)
    client.post(f"{base}/messages", json={"body": MARKERS["patient"] * 50}, headers=patient)
    client.post(
        f"{base}/attachments",
        headers=patient,
        data={"file": (io.BytesIO(MARKERS["file"].encode() * 30000), MARKERS["filename"])},
    )
    return conv


def stored_values(db: Path, conv_id: str) -> list[bytes]:
    """Every value the database holds for one conversation, as its bytes."""
    conn = sqlite3.connect(db)
    queries = [
        ("SELECT * FROM conversations WHERE id = ?", (conv_id,)),
        ("SELECT * FROM messages WHERE conversation_id = ?", (conv_id,)),
        ("SELECT * FROM attachments WHERE conversation_id = ?", (conv_id,)),
        (
            "SELECT c.* FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment_id "
            "WHERE a.conversation_id = ?",
            (conv_id,),
        ),
        ("SELECT * FROM record_keys WHERE conversation_id = ?", (conv_id,)),
        ("SELECT * FROM upload_throttle WHERE conversation_id = ?", (conv_id,)),
        ("SELECT * FROM conversation_usage WHERE conversation_id = ?", (conv_id,)),
    ]
    values = []
    for sql, params in queries:
        for row in conn.execute(sql, params):
            for value in row:
                if isinstance(value, bytes) and len(value) >= 16:
                    # Long blobs: a few slices anywhere must be gone, not only the whole value.
                    values += [
                        value[i : i + 32] for i in range(0, len(value), max(32, len(value) // 8))
                    ]
                elif isinstance(value, str) and len(value) >= 16:
                    values.append(value.encode())
                elif isinstance(value, int) and value > 10**15:  # a microsecond timestamp
                    values.append(value.to_bytes(8, "big"))
    conn.close()
    return values


def test_no_marker_is_ever_stored_in_plaintext(app, client, staff_auth, clock):
    flow(client, staff_auth, clock)
    data = raw_bytes(app.extensions["medcell"]["config"].data_dir)
    for marker in MARKERS.values():
        assert marker.encode() not in data, marker


def test_deleted_conversation_leaves_no_byte_in_the_data_directory(app, client, staff_auth, clock):
    keep = flow(client, staff_auth, clock)
    doomed = flow(client, staff_auth, clock)
    data_dir = app.extensions["medcell"]["config"].data_dir
    db = app.extensions["medcell"]["config"].database
    values = stored_values(db, doomed["id"])
    values.append(__import__("hashlib").sha256(doomed["patient_token"].encode()).digest())
    assert len(values) > 20
    before = raw_bytes(data_dir)
    assert all(v in before for v in values)

    response = client.delete(
        f"/api/v1/conversations/{doomed['id']}",
        headers={"Authorization": f"Bearer {doomed['patient_token']}"},
    )
    assert response.status_code == 204

    after = raw_bytes(data_dir)
    leftovers = [v for v in values if v in after]
    assert leftovers == []
    assert (data_dir / "facility.db-wal").stat().st_size == 0
    # The conversation that was not deleted is intact.
    listed = client.get(f"/api/v1/conversations/{keep['id']}/messages", headers=staff_auth)
    assert [m["body"] for m in listed.json["messages"]][:1] == [MARKERS["staff"]]


def test_expired_conversation_leaves_no_byte_either(app, client, staff_auth, clock):
    doomed = flow(client, staff_auth, clock)
    medcell = app.extensions["medcell"]
    values = stored_values(medcell["config"].database, doomed["id"])
    clock.advance(7 * 86400 + 1)
    assert medcell["conversations"].delete_expired(medcell["store"].conn()) == 1
    after = raw_bytes(medcell["config"].data_dir)
    assert [v for v in values if v in after] == []


def test_delete_all_leaves_no_byte_of_any_conversation(app, client, staff_auth, admin_auth, clock):
    convs = [flow(client, staff_auth, clock) for _ in range(3)]
    medcell = app.extensions["medcell"]
    values = [v for c in convs for v in stored_values(medcell["config"].database, c["id"])]
    assert client.delete("/api/v1/conversations?confirm=alpha", headers=admin_auth).json == {
        "deleted": 3
    }
    after = raw_bytes(medcell["config"].data_dir)
    assert [v for v in values if v in after] == []

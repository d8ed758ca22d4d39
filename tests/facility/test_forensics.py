"""Raw bytes of the data files: nothing readable stored, nothing of a deleted conversation left."""

import io
import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

MARKERS = {
    "title": "MARKER-TITLE-Zq81xv",
    "staff": "MARKER-STAFF-MESSAGE-Hq27rt",
    "patient": "MARKER-PATIENT-MESSAGE-Kp55mw",
    "file": "MARKER-ATTACHMENT-CONTENT-Wd09bn",
    "filename": "MARKER-FILENAME-Rt44qa.pdf",
    "reference": "MARKER-REFERENCE-NAME-Bv73ke",
    "number": "MARKER-NUMBER-Lc19pz",
    "email": "marker-patient-mail-Gh62ty@example.org",
    "note": "MARKER-INTERNAL-NOTE-Yf38nc",
}
STAFF_MAIL = "team@praxis.example"


@pytest.fixture
def app(mail_app):
    """A facility with mail set up, so a patient's address and queued mails exist as well."""
    return mail_app


def raw_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def flow(client, staff_auth, clock) -> dict:
    # The test clock stands still; move it so this conversation's timestamps are its own.
    clock.advance(1.000321)
    reference = {"name": MARKERS["reference"], "number": MARKERS["number"]}
    conv = client.post(
        "/api/v1/conversations",
        json={"title": MARKERS["title"], "reference": reference},
        headers=staff_auth,
    ).json
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    base = f"/api/v1/conversations/{conv['id']}"
    # Both sides want mail: each message below queues a (sealed) notification in the outbox.
    opted = client.put("/api/v1/notifications", json={"email": STAFF_MAIL}, headers=staff_auth)
    given = client.put(f"{base}/notifications", json={"email": MARKERS["email"]}, headers=patient)
    assert opted.status_code == 200 and given.status_code == 200, given.json
    client.post(f"{base}/messages", json={"body": MARKERS["staff"]}, headers=staff_auth)
    client.post(f"{base}/messages", json={"body": MARKERS["patient"] * 50}, headers=patient)
    attachment = client.post(
        f"{base}/attachments",
        headers=patient,
        data={
            "file": (io.BytesIO(b"%PDF-" + MARKERS["file"].encode() * 30000), MARKERS["filename"])
        },
    ).json
    # Staff read, download and export it: each is a sealed entry in the patient's access log.
    client.get(f"{base}/messages", headers=staff_auth)
    client.get(f"/api/v1/attachments/{attachment['id']}", headers=staff_auth)
    for fmt in ("pdf", "fhir"):
        assert client.get(f"{base}/export?format={fmt}", headers=staff_auth).status_code == 200
    # The patient reads it too, so read marks exist as well.
    client.get(f"{base}/messages", headers=patient)
    # The team's internal note (sealed like a message) and an assignment.
    noted = client.post(f"{base}/notes", json={"body": MARKERS["note"] * 20}, headers=staff_auth)
    assigned = client.put(f"{base}/assignee", json={"username": "nurse"}, headers=staff_auth)
    assert noted.status_code == 201 and assigned.status_code == 200
    # The team inbox opens the last message for its preview (in memory only).
    assert client.get("/api/v1/inbox", headers=staff_auth).status_code == 200
    return conv


def stored_values(db: Path, conv_id: str) -> list[bytes]:
    """Every value the database holds for one conversation, as its bytes."""
    conn = sqlite3.connect(db)
    # Every table that belongs to a conversation, found from the schema, so new ones count too.
    tables = [
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if any(col[1] == "conversation_id" for col in conn.execute(f'PRAGMA table_info("{name}")'))
    ]
    queries = [
        ("SELECT * FROM conversations WHERE id = ?", (conv_id,)),
        (
            "SELECT c.* FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment_id "
            "WHERE a.conversation_id = ?",
            (conv_id,),
        ),
        *((f'SELECT * FROM "{t}" WHERE conversation_id = ?', (conv_id,)) for t in tables),
    ]
    assert {"outbox", "notify_patient", "access_log", "read_marks", "notes"} <= set(tables)
    values = []
    for sql, params in queries:
        for row in conn.execute(sql, params):
            for value in row:
                if isinstance(value, bytes) and len(value) >= 16:
                    # Long blobs: a few slices anywhere must be gone, not only the whole value.
                    # (Slices shorter than 16 bytes could turn up anywhere by chance.)
                    step = max(32, len(value) // 8)
                    values += [value[i : i + 32] for i in range(0, len(value) - 15, step)]
                elif isinstance(value, str) and len(value) >= 16:
                    values.append(value.encode())
                elif isinstance(value, int) and value > 10**15:  # a microsecond timestamp
                    values.append(value.to_bytes(8, "big"))
    conn.close()
    return values


def test_no_marker_is_ever_stored_in_plaintext(app, client, staff_auth, clock):
    flow(client, staff_auth, clock)
    data = raw_bytes(app.extensions["medcell"].config.data_dir)
    for marker in MARKERS.values():
        assert marker.encode() not in data, marker


def test_deleted_conversation_leaves_no_byte_in_the_data_directory(app, client, staff_auth, clock):
    keep = flow(client, staff_auth, clock)
    doomed = flow(client, staff_auth, clock)
    data_dir = app.extensions["medcell"].config.data_dir
    db = app.extensions["medcell"].config.database
    values = stored_values(db, doomed["id"])
    values.append(__import__("hashlib").sha256(doomed["patient_token"].encode()).digest())
    assert len(values) > 20
    access_rows = sqlite3.connect(db).execute(
        "SELECT count(*) FROM access_log WHERE conversation_id = ?", (doomed["id"],)
    )
    assert access_rows.fetchone()[0] == 4  # opened, downloaded, exported twice
    before = raw_bytes(data_dir)
    assert all(v in before for v in values)

    response = client.delete(
        f"/api/v1/conversations/{doomed['id']}",
        headers={"Authorization": f"Bearer {doomed['patient_token']}"},
    )
    assert response.status_code == 200

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
    values = stored_values(medcell.config.database, doomed["id"])
    clock.advance(7 * 86400 + 1)
    assert medcell.conversations.delete_expired(medcell.store.conn()) == 1
    after = raw_bytes(medcell.config.data_dir)
    assert [v for v in values if v in after] == []


def test_delete_all_leaves_no_byte_of_any_conversation(app, client, staff_auth, admin_auth, clock):
    convs = [flow(client, staff_auth, clock) for _ in range(3)]
    medcell = app.extensions["medcell"]
    values = [v for c in convs for v in stored_values(medcell.config.database, c["id"])]
    wipe = client.delete("/api/v1/conversations?confirm=alpha", headers=admin_auth).json
    assert wipe["deleted"] == 3 and wipe["receipt"]["verified"] is True
    after = raw_bytes(medcell.config.data_dir)
    assert [v for v in values if v in after] == []


def all_rows(db: Path) -> dict[str, set]:
    """Every row of every table, by table."""
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    rows = {t: set(conn.execute(f'SELECT * FROM "{t}"')) for t in tables}
    conn.close()
    return rows


def test_after_deletion_nothing_of_the_conversation_is_left_but_its_receipt(
    app, client, staff_auth, clock
):
    flow(client, staff_auth, clock)
    db = app.extensions["medcell"].config.database
    before = all_rows(db)
    doomed = flow(client, staff_auth, clock)
    values = stored_values(db, doomed["id"])
    receipt = client.delete(f"/api/v1/conversations/{doomed['id']}", headers=staff_auth).json[
        "receipt"
    ]

    after = all_rows(db)
    # Every table is as it was before the conversation existed, but for the receipt and the
    # content-free tallies of how many deletions there were.
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"receipts", "counters"}
    (row,) = after["receipts"] - before["receipts"]
    assert row[0] == receipt["receipt_id"]
    # The receipt row and the receipt hold nothing the conversation had stored.
    receipt_bytes = repr(row).encode() + json.dumps(receipt).encode()
    for value in [*values, doomed["id"].encode(), doomed["patient_token"].encode()]:
        assert value not in receipt_bytes
    for marker in MARKERS.values():
        assert marker.encode() not in receipt_bytes
    # And on disk nothing of it survives outside the receipt either.
    raw = raw_bytes(app.extensions["medcell"].config.data_dir)
    assert [v for v in values if v in raw] == []


def test_an_expired_conversation_leaves_only_its_receipt(app, client, staff_auth, clock):
    db = app.extensions["medcell"].config.database
    # The staff's opt-in is the account's, not the conversation's: made before, it stays.
    client.put("/api/v1/notifications", json={"email": STAFF_MAIL}, headers=staff_auth)
    before = all_rows(db)
    flow(client, staff_auth, clock)
    clock.advance(7 * 86400 + 1)
    medcell = app.extensions["medcell"]
    assert medcell.conversations.delete_expired(medcell.store.conn(), batch=1) == 1
    after = all_rows(db)
    assert {t for t in after if after[t] != before[t]} == {"receipts", "counters"}
    (receipt,) = medcell.conversations.receipts.recent(medcell.store.conn())
    # Deleted one message at a time, yet the receipt counts everything the conversation had.
    assert receipt["reason"] == "expiry" and receipt["verified"] is True
    # Record keys: the conversation's, 3 messages', the attachment's and the internal note's.
    assert receipt["counts"] == {"messages": 3, "attachments": 1, "record_keys": 6}


def message_values(db: Path, msg_id: str) -> list[bytes]:
    """Slices of what the database holds of one message: its sealed body, its wrapped key, and
    its files' metadata, chunks and keys."""
    conn = sqlite3.connect(db)
    blobs = [
        *conn.execute("SELECT body FROM messages WHERE id = ?", (msg_id,)),
        *conn.execute(
            "SELECT wrapped FROM record_keys WHERE record_id = ? OR record_id IN "
            "(SELECT id FROM attachments WHERE message_id = ?)",
            (msg_id, msg_id),
        ),
        *conn.execute("SELECT meta FROM attachments WHERE message_id = ?", (msg_id,)),
        *conn.execute(
            "SELECT c.data FROM attachment_chunks c JOIN attachments a "
            "ON a.id = c.attachment_id WHERE a.message_id = ?",
            (msg_id,),
        ),
    ]
    conn.close()
    values = []
    for (value,) in blobs:
        step = max(32, len(value) // 8)
        values += [value[i : i + 32] for i in range(0, len(value) - 15, step)]
    return values


def own_message(client, conv, auth, body: str, file: bytes | None = None) -> str:
    base = f"/api/v1/conversations/{conv['id']}"
    if file is None:
        response = client.post(f"{base}/messages", json={"body": body}, headers=auth)
        assert response.status_code == 201
        return response.json["id"]
    data = {"file": (io.BytesIO(file), "befund.pdf"), "body": body}
    assert client.post(f"{base}/attachments", headers=auth, data=data).status_code == 201
    return client.get(f"{base}/messages", headers=auth).json["messages"][-1]["id"]


def test_a_corrected_message_leaves_no_byte_of_its_old_text(app, client, staff_auth, clock):
    conv = flow(client, staff_auth, clock)
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    medcell = app.extensions["medcell"]
    old = "MARKER-OLD-TEXT-Np40dz" * 40
    msg_id = own_message(client, conv, patient, old)
    values = message_values(medcell.config.database, msg_id)
    assert len(values) >= 10 and all(v in raw_bytes(medcell.config.data_dir) for v in values)

    response = client.put(
        f"/api/v1/conversations/{conv['id']}/messages/{msg_id}",
        json={"body": "MARKER-NEW-TEXT-Uy81kc"},
        headers=patient,
    )
    assert response.status_code == 200

    after = raw_bytes(medcell.config.data_dir)
    assert [v for v in values if v in after] == []
    assert b"MARKER-NEW-TEXT-Uy81kc" not in after and b"MARKER-OLD-TEXT" not in after
    assert (medcell.config.data_dir / "facility.db-wal").stat().st_size == 0


def test_a_deleted_message_leaves_no_byte_of_its_text_or_files(app, client, staff_auth, clock):
    conv = flow(client, staff_auth, clock)
    medcell = app.extensions["medcell"]
    file = b"%PDF-" + b"MARKER-DELETED-FILE-Ra62wo" * 30000
    msg_id = own_message(client, conv, staff_auth, "MARKER-DELETED-TEXT-Sj27pv" * 40, file)
    values = message_values(medcell.config.database, msg_id)
    assert len(values) > 30 and all(v in raw_bytes(medcell.config.data_dir) for v in values)

    response = client.delete(
        f"/api/v1/conversations/{conv['id']}/messages/{msg_id}", headers=staff_auth
    )
    assert response.status_code == 200

    after = raw_bytes(medcell.config.data_dir)
    assert [v for v in values if v in after] == []
    assert (medcell.config.data_dir / "facility.db-wal").stat().st_size == 0
    # What is left of it is the mark: who wrote it when, and when it was deleted.
    (body, deleted_at) = (
        sqlite3.connect(medcell.config.database)
        .execute("SELECT body, deleted_at FROM messages WHERE id = ?", (msg_id,))
        .fetchone()
    )
    assert body == b"" and deleted_at is not None

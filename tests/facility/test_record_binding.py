"""A database writer without the keys cannot move a message, flip its author or change its time.

Exports are medical records: a record altered in SQLite must read as damaged, loudly, never as
genuine data. Databases sealed before the binding are re-sealed under it at start.
"""

import io
import sqlite3

import pytest

from services.facility.core import bindings, crypto, migrations
from tests.facility.conftest import login
from tests.facility.schema_steps import undo_after_v11

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def two(client, staff_auth) -> dict:
    """Two conversations; in the first a patient's message and a staff file."""
    convs = [
        client.post("/api/v1/conversations", json={"title": t}, headers=staff_auth).json
        for t in ("Knie", "Schulter")
    ]
    patient = {"Authorization": f"Bearer {convs[0]['patient_token']}"}
    said = client.post(
        f"/api/v1/conversations/{convs[0]['id']}/messages",
        json={"body": "Es tut weh"},
        headers=patient,
    ).json
    sent = client.post(
        f"/api/v1/conversations/{convs[0]['id']}/attachments",
        data={"file": (io.BytesIO(PNG), "knie.png")},
        headers=staff_auth,
    ).json
    return {"first": convs[0]["id"], "second": convs[1]["id"], "said": said, "file": sent}


def database(app) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["medcell"].config.database, isolation_level=None)


def assert_damaged(response) -> None:
    assert response.status_code == 500
    assert response.json["error"]["code"] == "record_damaged"
    assert "integrity" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE messages SET conversation_id = :second WHERE id = :said",
        "UPDATE messages SET author = 'staff' WHERE id = :said",
        "UPDATE messages SET created_at = created_at - 86400000000 WHERE id = :said",
    ],
    ids=["moved", "author_flipped", "time_changed"],
)
def test_a_message_altered_in_sqlite_reads_as_damaged_not_as_genuine(
    app, client, staff_auth, two, change
):
    db = database(app)
    db.execute(change, {"second": two["second"], "said": two["said"]["id"]})
    (conv,) = db.execute(
        "SELECT conversation_id FROM messages WHERE id = ?", (two["said"]["id"],)
    ).fetchone()
    listed = client.get(f"/api/v1/conversations/{conv}/messages", headers=staff_auth)
    assert_damaged(listed)
    for fmt in ("pdf", "fhir"):
        exported = client.get(
            f"/api/v1/conversations/{conv}/export?format={fmt}", headers=staff_auth
        )
        assert_damaged(exported)


def test_an_attachment_moved_to_another_message_reads_as_damaged(app, client, staff_auth, two):
    database(app).execute(
        "UPDATE attachments SET message_id = ? WHERE id = ?", (two["said"]["id"], two["file"]["id"])
    )
    assert_damaged(client.get(f"/api/v1/attachments/{two['file']['id']}", headers=staff_auth))
    listed = client.get(f"/api/v1/conversations/{two['first']}/messages", headers=staff_auth)
    assert_damaged(listed)


def test_an_access_log_entry_with_another_time_reads_as_damaged(app, client, staff_auth, two):
    client.get(f"/api/v1/conversations/{two['first']}/messages", headers=staff_auth)
    database(app).execute("UPDATE access_log SET created_at = created_at - 1")
    log = client.get(f"/api/v1/conversations/{two['first']}/access-log", headers=staff_auth)
    assert_damaged(log)


def test_records_sealed_before_the_binding_are_resealed_at_start(make_app, clock):
    app = make_app()
    client = app.test_client()
    staff = login(client, "nurse", "another long secret")
    conv = client.post("/api/v1/conversations", json={"title": "Knie"}, headers=staff).json
    base = f"/api/v1/conversations/{conv['id']}"
    said = client.post(f"{base}/messages", json={"body": "Bitte kommen"}, headers=staff).json
    sent = client.post(
        f"{base}/attachments", data={"file": (io.BytesIO(PNG), "knie.png")}, headers=staff
    ).json
    client.get(f"{base}/messages", headers=staff)  # an access-log entry
    medcell = app.extensions["medcell"]
    keyring, facility = medcell.keyring, medcell.config.facility
    db = database(app)
    (msg_id,) = db.execute(
        "SELECT id FROM messages WHERE id != ?", (said["id"],)
    ).fetchone()  # the attachment's message
    (size, chunks) = db.execute("SELECT size, chunks FROM attachments").fetchone()
    (entry_id, logged_at) = db.execute("SELECT id, created_at FROM access_log").fetchone()
    (said_at, writer) = db.execute(
        "SELECT created_at, staff_id FROM messages WHERE id = ?", (said["id"],)
    ).fetchone()
    rows = {  # table: sealed column, record id, whose key, its binding now
        "messages": (
            "body",
            said["id"],
            said["id"],
            bindings.message_body(facility, said["id"], conv["id"], "staff", said_at, writer),
        ),
        "attachments": (
            "meta",
            sent["id"],
            sent["id"],
            bindings.attachment_meta(facility, sent["id"], conv["id"], msg_id, size, chunks),
        ),
        "access_log": (
            "entry",
            entry_id,
            conv["id"],
            bindings.access_entry(facility, entry_id, conv["id"], logged_at),
        ),
    }
    # Turn the database back into one written before the binding: old associated data, v8.
    app_conn = medcell.store.conn()
    old_aad = {}
    for table, (column, record_id, key_id, bound) in rows.items():
        key = keyring.record_key(app_conn, key_id)
        (sealed,) = db.execute(
            f"SELECT {column} FROM {table} WHERE id = ?", (record_id,)
        ).fetchone()
        plain = crypto.unseal(key, sealed, bound)
        old_aad[table] = crypto.aad(facility, table, record_id, column)
        db.execute(
            f"UPDATE {table} SET {column} = ? WHERE id = ?",
            (crypto.seal(key, plain, old_aad[table]), record_id),
        )
    # The attachment's (empty) message too: before v10 no message was bound to its writer.
    (file_at,) = db.execute("SELECT created_at FROM messages WHERE id = ?", (msg_id,)).fetchone()
    key = keyring.record_key(app_conn, msg_id)
    (sealed,) = db.execute("SELECT body FROM messages WHERE id = ?", (msg_id,)).fetchone()
    plain = crypto.unseal(
        key, sealed, bindings.message_body(facility, msg_id, conv["id"], "staff", file_at, writer)
    )
    db.execute(
        "UPDATE messages SET body = ? WHERE id = ?",
        (crypto.seal(key, plain, crypto.aad(facility, "messages", msg_id, "body")), msg_id),
    )
    # Nor did it know assignments and notes (v11), nor who wrote which message (v10).
    undo_after_v11(db)
    db.execute("DROP TABLE notes")
    db.execute("ALTER TABLE conversations DROP COLUMN assigned_to")
    db.execute("ALTER TABLE messages DROP COLUMN staff_id")
    db.execute("ALTER TABLE staff DROP COLUMN display_name")
    db.execute("DELETE FROM counters WHERE name = 'staff_last_id'")
    db.execute("PRAGMA user_version = 8")
    medcell.store.close()

    again = make_app()
    client = again.test_client()
    staff = login(client, "nurse", "another long secret")
    listed = client.get(f"{base}/messages", headers=staff)
    assert listed.status_code == 200
    assert listed.json["messages"][0]["body"] == "Bitte kommen"
    assert listed.json["messages"][1]["attachments"][0]["filename"] == "knie.png"
    assert client.get(f"{base}/access-log", headers=staff).status_code == 200
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    # No record opens under the old binding any more.
    conn = again.extensions["medcell"].store.conn()
    for table, (column, record_id, key_id, _) in rows.items():
        key = again.extensions["medcell"].keyring.record_key(conn, key_id)
        (sealed,) = db.execute(
            f"SELECT {column} FROM {table} WHERE id = ?", (record_id,)
        ).fetchone()
        with pytest.raises(crypto.CryptoError):
            crypto.unseal(key, sealed, old_aad[table])


def test_the_staff_page_of_an_altered_conversation_says_it_was_altered(app, two):
    from services.facility.core import accounts as auth
    from tests.web.conftest import BASE, STAFF, browser, log_in

    auth.create_staff(app.extensions["medcell"].store.conn(), *STAFF, "staff", 0)
    database(app).execute("UPDATE messages SET author = 'staff' WHERE id = ?", (two["said"]["id"],))
    staff = browser(app)
    assert log_in(staff, *STAFF).status_code == 303
    page = staff.get(f"{BASE}/staff/c/{two['first']}")
    assert page.status_code == 500
    assert "außerhalb von medcell in der Datenbank verändert" in page.get_data(as_text=True)

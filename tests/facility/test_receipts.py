"""Deletion receipts: signed, content-free, for every kind of deletion, honest about `verified`."""

import base64
import copy
import io
import sqlite3
import stat

import nacl.signing
import pytest

from medcell_common import receipts as fmt
from services.facility.core import store
from tests.facility.conftest import STAFF, login


def check_signature(receipt: dict, key: dict) -> bool:
    """Verify a receipt as any third party would: only the contract's rules and PyNaCl."""
    fmt.check_shape(receipt)
    verify_key = nacl.signing.VerifyKey(base64.b64decode(key["public_key"]))
    try:
        verify_key.verify(fmt.signed_bytes(receipt), base64.b64decode(receipt["signature"]))
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def new_conversation(client, staff_auth, messages: int = 1) -> dict:
    conv = client.post("/api/v1/conversations", json={"title": "Rash"}, headers=staff_auth).json
    for i in range(messages):
        client.post(
            f"/api/v1/conversations/{conv['id']}/messages",
            json={"body": f"m{i}"},
            headers=staff_auth,
        )
    return conv


@pytest.fixture
def key(client) -> dict:
    response = client.get("/api/v1/receipt-key")
    assert response.status_code == 200
    return response.json


def test_receipt_key_is_ed25519_and_kept_in_the_key_directory_only(app, key):
    config = app.extensions["medcell"].config
    assert key["algorithm"] == "Ed25519"
    assert len(base64.b64decode(key["public_key"], validate=True)) == 32
    key_file = config.key_dir / "receipt-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    seed = key_file.read_bytes()
    assert bytes(nacl.signing.SigningKey(seed).verify_key) == base64.b64decode(key["public_key"])
    assert not any(seed in p.read_bytes() for p in config.data_dir.rglob("*") if p.is_file())


def test_the_key_survives_a_restart(make_app, key):
    again = make_app().test_client().get("/api/v1/receipt-key").json
    assert again == key


def test_patient_deletion_answers_a_signed_receipt_anyone_can_fetch(client, staff_auth, key):
    conv = new_conversation(client, staff_auth, messages=2)
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=patient).json["receipt"]
    assert receipt["facility"] == "alpha"
    assert receipt["reason"] == "patient"
    assert receipt["verified"] is True
    assert receipt["counts"] == {"messages": 2, "attachments": 0, "record_keys": 3}
    assert receipt["deleted_at"].endswith("Z") and len(receipt["deleted_at"]) == 20
    assert check_signature(receipt, key)
    # No token needed: the id is the secret (128 random bits), and it says nothing of content.
    fetched = client.get(f"/api/v1/receipts/{receipt['receipt_id']}")
    assert fetched.status_code == 200 and fetched.json == receipt
    download = client.get(f"/api/v1/receipts/{receipt['receipt_id']}?download")
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.json == receipt


def test_staff_deletion_says_staff(client, staff_auth, key):
    conv = new_conversation(client, staff_auth)
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    assert receipt["reason"] == "staff" and check_signature(receipt, key)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["counts"].update(messages=r["counts"]["messages"] + 1),
        lambda r: r.update(reason="staff" if r["reason"] != "staff" else "patient"),
        lambda r: r.update(deleted_at="2020-01-01T00:00:00Z"),
        lambda r: r.update(facility="beta"),
        lambda r: r.update(verified=not r["verified"]),
        lambda r: r.update(receipt_id="A" * 22),
        lambda r: r.update(signature=base64.b64encode(bytes(64)).decode()),
    ],
)
def test_a_tampered_receipt_fails_verification(client, staff_auth, key, change):
    conv = new_conversation(client, staff_auth)
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    assert check_signature(receipt, key)
    tampered = copy.deepcopy(receipt)
    change(tampered)
    assert not check_signature(tampered, key)


def test_another_facilitys_key_does_not_verify_a_receipt(make_app, client, staff_auth):
    conv = new_conversation(client, staff_auth)
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    other_key = make_app("beta").test_client().get("/api/v1/receipt-key").json
    assert not check_signature(receipt, other_key)


def test_expiry_gives_one_receipt_per_conversation(app, client, staff_auth, clock, key):
    for n in (1, 2, 3):
        new_conversation(client, staff_auth, messages=n)
    clock.advance(7 * 86400 + 1)
    medcell = app.extensions["medcell"]
    assert medcell.conversations.delete_expired(medcell.store.conn(), batch=2) == 3
    receipts = client.get("/api/v1/receipts", headers=login(client, *STAFF)).json["receipts"]
    assert sorted(r["counts"]["messages"] for r in receipts) == [1, 2, 3]
    assert all(r["reason"] == "expiry" and r["verified"] for r in receipts)
    assert all(check_signature(r, key) for r in receipts)
    assert len({r["receipt_id"] for r in receipts}) == 3


def test_wipe_gives_one_receipt_for_everything(client, staff_auth, admin_auth, key):
    for n in (1, 2):
        new_conversation(client, staff_auth, messages=n)
    wipe = client.delete("/api/v1/conversations?confirm=alpha", headers=admin_auth).json
    receipt = wipe["receipt"]
    assert wipe["deleted"] == 2
    assert receipt["reason"] == "facility_wipe" and receipt["verified"] is True
    assert receipt["counts"] == {"messages": 3, "attachments": 0, "record_keys": 5}
    assert check_signature(receipt, key)


def test_a_row_left_in_any_conversation_table_makes_the_receipt_unverified(app, client, staff_auth):
    # A future table that forgot its ON DELETE CASCADE: found through sqlite_master.
    conn = app.extensions["medcell"].store.conn()
    conn.execute("CREATE TABLE careless_notes (conversation_id TEXT NOT NULL, note BLOB)")
    conv = new_conversation(client, staff_auth)
    conn.execute("INSERT INTO careless_notes VALUES (?, x'00')", (conv["id"],))
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    assert receipt["verified"] is False


def test_an_attachment_chunk_left_behind_makes_the_receipt_unverified(app, client, staff_auth):
    # A chunk table rebuilt without its cascade, and a trigger that keeps one chunk from going:
    # the conversation's rows are all gone, but a piece of its file is still in the database.
    conn = app.extensions["medcell"].store.conn()
    conn.executescript(
        "PRAGMA foreign_keys=OFF;"
        "CREATE TABLE loose_chunks (attachment_id TEXT NOT NULL, seq INTEGER NOT NULL, "
        "data BLOB NOT NULL, PRIMARY KEY (attachment_id, seq));"
        "INSERT INTO loose_chunks SELECT * FROM attachment_chunks;"
        "DROP TABLE attachment_chunks;"
        "ALTER TABLE loose_chunks RENAME TO attachment_chunks;"
        "CREATE TRIGGER keep_first BEFORE DELETE ON attachment_chunks WHEN old.seq = 0 "
        "BEGIN SELECT RAISE(IGNORE); END;"
        "PRAGMA foreign_keys=ON;"
    )
    conv = new_conversation(client, staff_auth)
    sent = client.post(
        f"/api/v1/conversations/{conv['id']}/attachments",
        headers=staff_auth,
        data={"file": (io.BytesIO(b"%PDF-1.4 Befund"), "befund.pdf", "application/pdf")},
    )
    assert sent.status_code == 201
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    assert conn.execute("SELECT count(*) FROM attachment_chunks").fetchone()[0] == 1
    assert receipt["verified"] is False


def test_a_checkpoint_that_cannot_truncate_the_wal_makes_the_receipt_unverified(
    app, client, staff_auth
):
    conv = new_conversation(client, staff_auth)
    # The app's connection (this thread's) gives up on a busy WAL at once instead of after 5 s,
    # so the checkpoint's retries end in seconds.
    app.extensions["medcell"].store.conn().execute("PRAGMA busy_timeout=1")
    # A reader that keeps its snapshot open holds the WAL: TRUNCATE cannot finish.
    reader = sqlite3.connect(app.extensions["medcell"].config.database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages").fetchone()
    try:
        receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
            "receipt"
        ]
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert receipt["verified"] is False
    assert receipt["counts"]["messages"] == 1


def test_a_receipt_left_unsigned_by_a_crash_is_signed_later_as_unverified(app, clock, key):
    medcell = app.extensions["medcell"]
    conn, receipts = medcell.store.conn(), medcell.conversations.receipts
    with store.write(conn):  # the delete committed, then the process died before finish()
        pending = receipts.begin(
            conn, "staff", {"messages": 4, "attachments": 0, "record_keys": 5}, []
        )
    assert receipts.get(conn, pending.receipt_id) is None  # unsigned receipts are not shown
    receipts.housekeeping(conn)
    assert receipts.get(conn, pending.receipt_id) is None  # might still be finishing
    clock.advance(61)
    receipts.housekeeping(conn)
    receipt = receipts.get(conn, pending.receipt_id)
    assert receipt["verified"] is False and receipt["counts"]["messages"] == 4
    assert check_signature(receipt, key)


def test_receipts_are_kept_for_a_year_then_forgotten(app, client, staff_auth, clock):
    conv = new_conversation(client, staff_auth)
    receipt_id = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]["receipt_id"]
    medcell = app.extensions["medcell"]
    receipts, conn = medcell.conversations.receipts, medcell.store.conn()
    clock.advance(364 * 86400)
    receipts.housekeeping(conn)
    assert client.get(f"/api/v1/receipts/{receipt_id}").status_code == 200
    clock.advance(2 * 86400)
    assert receipts.housekeeping(conn) == 1
    assert client.get(f"/api/v1/receipts/{receipt_id}").status_code == 404


def test_unknown_receipt_ids_are_404_and_throttled(client):
    for _ in range(30):
        assert client.get("/api/v1/receipts/" + "B" * 22).status_code == 404
    refused = client.get("/api/v1/receipts/" + "C" * 22)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_only_staff_list_receipts(client, staff_auth, conversation):
    assert client.get("/api/v1/receipts").status_code == 401
    assert client.get("/api/v1/receipts", headers=conversation["patient"]).status_code == 403
    for bad in ("0", "1001", "²", "-1", "x"):
        assert client.get(f"/api/v1/receipts?limit={bad}", headers=staff_auth).status_code == 400
    client.delete(f"/api/v1/conversations/{conversation['id']}", headers=staff_auth)
    listed = client.get("/api/v1/receipts?limit=1", headers=staff_auth).json["receipts"]
    assert [r["reason"] for r in listed] == ["staff"]


def test_a_receipt_names_no_conversation_title_or_patient(client, staff_auth):
    conv = client.post(
        "/api/v1/conversations", json={"title": "Herr Mustermann, Knie"}, headers=staff_auth
    ).json
    client.post(
        f"/api/v1/conversations/{conv['id']}/attachments",
        headers=staff_auth,
        data={"file": (io.BytesIO(b"x" * 10), "befund-mustermann.pdf")},
    )
    receipt = client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).json[
        "receipt"
    ]
    assert set(receipt) == set(fmt.FIELDS)
    text = repr(receipt)
    for secret in (conv["id"], conv["patient_token"], "Mustermann", "befund"):
        assert secret not in text

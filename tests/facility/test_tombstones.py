"""Tombstones: every deletion leaves one outside the database, and a restore re-applies them."""

import json
import secrets
import sqlite3

import pytest

from services.facility import create_app
from services.facility.core import backups, retention

from .conftest import ADMIN, STAFF, facility_app, login, make_config

ID = "0123456789abcdef"
SECRET_TEXT = "Befund Huber: Blutzucker 212"


@pytest.fixture
def drop(tmp_path):
    return tmp_path / "run" / "tombstones"


@pytest.fixture
def app(tmp_path, clock, drop):
    drop.parent.mkdir()
    return facility_app(tmp_path / "alpha", clock, tombstone_dir=str(drop))


@pytest.fixture
def key() -> bytes:
    return secrets.token_bytes(32)


def new_conversation(client, staff_auth, title="Knie rechts") -> dict:
    body = client.post("/api/v1/conversations", json={"title": title}, headers=staff_auth).json
    client.post(
        f"/api/v1/conversations/{body['id']}/messages",
        json={"body": SECRET_TEXT},
        headers=staff_auth,
    )
    return {**body, "patient": {"Authorization": f"Bearer {body['patient_token']}"}}


def dropped(drop) -> list[dict]:
    return [t for f in sorted(drop.glob("*.json")) for t in json.loads(f.read_text())["tombstones"]]


def tombstones_text(drop) -> str:
    return "".join(f.read_text() for f in drop.iterdir())


def test_every_kind_of_deletion_leaves_a_content_free_tombstone(app, client, staff_auth, drop):
    by_patient = new_conversation(client, staff_auth)
    by_staff = new_conversation(client, staff_auth)
    wiped = new_conversation(client, staff_auth)
    client.delete(f"/api/v1/conversations/{by_patient['id']}", headers=by_patient["patient"])
    client.delete(f"/api/v1/conversations/{by_staff['id']}", headers=staff_auth)
    admin = login(client, *ADMIN)
    client.delete("/api/v1/conversations?confirm=alpha", headers=admin)

    tombstones = dropped(drop)

    assert [t["reason"] for t in tombstones].count("patient") == 1
    assert [t["reason"] for t in tombstones].count("staff") == 1
    assert [t["reason"] for t in tombstones].count("facility_wipe") == 1
    text = tombstones_text(drop)
    for conv in (by_patient, by_staff, wiped):
        assert conv["id"] not in text and conv["patient_token"] not in text
    assert "Knie" not in text and "Huber" not in text
    assert all(set(t) == {"mark", "deleted_at", "reason"} for t in tombstones)


def test_expiry_by_the_deletion_job_leaves_a_tombstone(app, client, staff_auth, clock, drop):
    new_conversation(client, staff_auth)
    clock.advance(8 * 86400)
    medcell = app.extensions["medcell"]

    retention.sweep(medcell.store.conn(), medcell.conversations, medcell.keyring, 86400)

    assert [t["reason"] for t in dropped(drop)] == ["expiry"]


def test_restore_deletes_again_what_the_patient_deleted_after_the_backup(
    app, client, staff_auth, clock, key, drop, tmp_path
):
    kept = new_conversation(client, staff_auth, "bleibt")
    gone = new_conversation(client, staff_auth, "geht")
    config = app.extensions["medcell"].config
    (tmp_path / "bk").mkdir()
    backups.make(config, clock, key, ID, tmp_path / "bk")
    clock.advance(60)
    client.delete(f"/api/v1/conversations/{gone['id']}", headers=gone["patient"])
    app.extensions["medcell"].store.close()

    result = backups.restore(config, clock, key, tmp_path / "bk", dropped(drop))

    assert result["reapplied"] == 1 and result["conversations"] == 1
    restored = create_app({"MEDCELL": config, "CLOCK": clock, "TESTING": True}).test_client()
    staff = login(restored, *STAFF)
    listed = restored.get("/api/v1/conversations", headers=staff).json["conversations"]
    assert [c["id"] for c in listed] == [kept["id"]]
    receipts = restored.get("/api/v1/receipts", headers=login(restored, *ADMIN))
    reasons = [r["reason"] for r in receipts.json["receipts"]]
    assert reasons == ["patient"]
    data = b"".join(p.read_bytes() for p in config.data_dir.iterdir() if p.is_file())
    assert gone["id"].encode() not in data


def test_without_its_tombstones_a_restore_brings_the_deleted_conversation_back(
    app, client, staff_auth, clock, key, tmp_path
):
    gone = new_conversation(client, staff_auth)
    config = app.extensions["medcell"].config
    (tmp_path / "bk").mkdir()
    backups.make(config, clock, key, ID, tmp_path / "bk")
    client.delete(f"/api/v1/conversations/{gone['id']}", headers=gone["patient"])
    app.extensions["medcell"].store.close()

    result = backups.restore(config, clock, key, tmp_path / "bk")

    assert result["reapplied"] == 0 and result["conversations"] == 1


def test_tombstones_match_on_fresh_directories_because_the_backup_carries_their_key(
    app, client, staff_auth, clock, key, drop, tmp_path
):
    gone = new_conversation(client, staff_auth)
    (tmp_path / "bk").mkdir()
    backups.make(app.extensions["medcell"].config, clock, key, ID, tmp_path / "bk")
    client.delete(f"/api/v1/conversations/{gone['id']}", headers=staff_auth)
    lost_disk = make_config(tmp_path / "new", "alpha")

    result = backups.restore(lost_disk, clock, key, tmp_path / "bk", dropped(drop))

    assert result["reapplied"] == 1 and result["conversations"] == 0
    conn = sqlite3.connect(lost_disk.database)
    assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    (receipt,) = conn.execute("SELECT reason, signature FROM receipts").fetchall()
    assert receipt[0] == "staff" and receipt[1]

"""Backups in the facility: a sealed snapshot with its keys, restored whole, refused when off."""

import io
import json
import os
import secrets
import sqlite3

import pytest

from services.facility import create_app
from services.facility.core import backups
from services.facility.core.errors import BackupError

from .conftest import ADMIN, STAFF, login, make_config

ID = "0123456789abcdef"


@pytest.fixture
def key() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def filled(app, client, staff_auth, conversation):
    """A facility with a conversation of two messages and an attachment."""
    conv = conversation["id"]
    for body in ("Blutwerte sind da", "Bitte Rückruf"):
        client.post(
            f"/api/v1/conversations/{conv}/messages", json={"body": body}, headers=staff_auth
        )
    client.post(
        f"/api/v1/conversations/{conv}/attachments",
        data={"file": (io.BytesIO(b"%PDF-1.4 Befund Huber"), "befund-huber.pdf")},
        headers=conversation["patient"],
    )
    return conversation


def backup(app, clock, key, out):
    out.mkdir(exist_ok=True)
    return backups.make(app.extensions["medcell"].config, clock, key, ID, out)


def restored_app(root, clock, retention=7 * 86400):
    """The same facility slug on fresh directories: where a restore lands after a lost disk."""
    return make_config(root, "alpha", retention=retention)


def open_app(config, clock):
    return create_app({"MEDCELL": config, "CLOCK": clock, "TESTING": True})


def test_restore_brings_back_every_message_and_file_on_empty_directories(
    app, filled, clock, key, tmp_path
):
    manifest = backup(app, clock, key, tmp_path / "bk")
    config = restored_app(tmp_path / "new", clock)

    result = backups.restore(config, clock, key, tmp_path / "bk")

    assert result["conversations"] == 1 and result["expired"] == 0
    assert manifest["facility"] == "alpha" and manifest["retention"] == "7d"
    client = open_app(config, clock).test_client()
    staff = login(client, *STAFF)
    messages = client.get(f"/api/v1/conversations/{filled['id']}/messages", headers=staff).json[
        "messages"
    ]
    assert [m["body"] for m in messages[:2]] == ["Blutwerte sind da", "Bitte Rückruf"]
    attachment = messages[2]["attachments"][0]
    assert attachment["filename"] == "befund-huber.pdf"
    data = client.get(f"/api/v1/attachments/{attachment['id']}", headers=staff).data
    assert data == b"%PDF-1.4 Befund Huber"


def test_backup_carries_its_keys_so_it_survives_the_live_key_rotation(
    app, filled, clock, key, tmp_path
):
    backup(app, clock, key, tmp_path / "bk")
    medcell = app.extensions["medcell"]
    medcell.keyring.rotate(medcell.store.conn())  # destroys the KEK the backup used
    config = restored_app(tmp_path / "new", clock)

    backups.restore(config, clock, key, tmp_path / "bk")

    client = open_app(config, clock).test_client()
    staff = login(client, *ADMIN)
    response = client.get(f"/api/v1/conversations/{filled['id']}/messages", headers=staff)
    assert response.status_code == 200 and len(response.json["messages"]) == 3


def test_nothing_of_the_facility_is_readable_in_the_backup_without_its_key(
    app, filled, clock, key, tmp_path
):
    backup(app, clock, key, tmp_path / "bk")
    everything = b"".join(p.read_bytes() for p in (tmp_path / "bk").iterdir())
    for secret in (b"Blutwerte", b"befund-huber", b"Befund Huber", b"nurse", b"Knee", b"SQLite"):
        assert secret not in everything
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == [
        "keys.sealed",
        "manifest.json",
        "snapshot.sealed",
    ]
    # The temporary copy on the data volume is gone too.
    assert [p.name for p in (tmp_path / "alpha" / "data").iterdir() if "backup" in p.name] == []


def test_restore_deletes_what_expired_since_the_backup_before_anyone_is_served(
    app, client, staff_auth, clock, key, tmp_path
):
    old = client.post("/api/v1/conversations", json={"title": "alt"}, headers=staff_auth).json
    clock.advance(3 * 86400)
    staff_auth = login(client, *STAFF)  # the first session has expired by then
    new = client.post("/api/v1/conversations", json={"title": "neu"}, headers=staff_auth).json
    backup(app, clock, key, tmp_path / "bk")
    clock.advance(5 * 86400)  # old is 8 days quiet now, new 5 days
    config = restored_app(tmp_path / "new", clock)

    result = backups.restore(config, clock, key, tmp_path / "bk")

    assert result["expired"] == 1 and result["conversations"] == 1
    conn = sqlite3.connect(config.database)
    assert [r[0] for r in conn.execute("SELECT id FROM conversations")] == [new["id"]]
    assert old["id"].encode() not in config.database.read_bytes()


def test_restore_ends_every_session_and_rotates_the_old_keys(
    app, filled, client, staff_auth, clock, key, tmp_path
):
    backup(app, clock, key, tmp_path / "bk")
    clock.advance(2 * 86400)  # the carried KEK is overdue for rotation by then
    config = restored_app(tmp_path / "new", clock)

    result = backups.restore(config, clock, key, tmp_path / "bk")

    restored = open_app(config, clock).test_client()
    assert restored.get("/api/v1/me", headers=staff_auth).status_code == 401
    assert restored.get("/api/v1/conversations", headers=filled["patient"]).status_code in (
        401,
        403,
    )
    assert result["key_version"] == 2
    assert sorted(p.name for p in config.key_dir.glob("kek-*")) == ["kek-000002.key"]


def test_restore_over_live_data_shreds_its_keys_and_replaces_it(
    app, filled, client, staff_auth, clock, key, tmp_path
):
    backup(app, clock, key, tmp_path / "bk")
    later = client.post("/api/v1/conversations", json={"title": "später"}, headers=staff_auth)
    config = app.extensions["medcell"].config
    app.extensions["medcell"].store.close()  # the container is stopped for a restore

    backups.restore(config, clock, key, tmp_path / "bk")

    conn = sqlite3.connect(config.database)
    ids = [r[0] for r in conn.execute("SELECT id FROM conversations")]
    assert ids == [filled["id"]] and later.json["id"] not in ids


def test_an_altered_manifest_does_not_restore(app, filled, clock, key, tmp_path):
    backup(app, clock, key, tmp_path / "bk")
    path = tmp_path / "bk" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["expires"] = "2099-01-01T00:00:00Z"  # trying to stretch its life
    path.write_text(json.dumps(manifest))
    config = restored_app(tmp_path / "new", clock)

    with pytest.raises(BackupError, match="does not open"):
        backups.restore(config, clock, key, tmp_path / "bk")
    assert not config.key_dir.exists() or not list(config.key_dir.glob("kek-*"))
    assert not config.database.exists()


def test_a_flipped_byte_in_the_snapshot_is_refused_and_changes_nothing(
    app, filled, clock, key, tmp_path
):
    backup(app, clock, key, tmp_path / "bk")
    path = tmp_path / "bk" / "snapshot.sealed"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    config = app.extensions["medcell"].config
    before = config.database.read_bytes()
    keys_before = sorted(p.name for p in config.key_dir.glob("kek-*"))

    with pytest.raises(BackupError, match="does not open"):
        backups.restore(config, clock, key, tmp_path / "bk")

    assert config.database.read_bytes() == before
    assert sorted(p.name for p in config.key_dir.glob("kek-*")) == keys_before
    assert [p for p in config.data_dir.iterdir() if p.name.startswith(".restore")] == []


def test_a_truncated_snapshot_is_refused(app, filled, clock, key, tmp_path):
    backup(app, clock, key, tmp_path / "bk")
    path = tmp_path / "bk" / "snapshot.sealed"
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(BackupError, match="truncated"):
        backups.restore(restored_app(tmp_path / "new", clock), clock, key, tmp_path / "bk")


def test_another_key_does_not_open_the_backup(app, filled, clock, key, tmp_path):
    backup(app, clock, key, tmp_path / "bk")
    with pytest.raises(BackupError, match="does not open"):
        backups.restore(
            restored_app(tmp_path / "new", clock), clock, secrets.token_bytes(32), tmp_path / "bk"
        )


def test_a_backup_restores_only_into_its_own_facility(app, filled, clock, key, tmp_path):
    backup(app, clock, key, tmp_path / "bk")
    other = make_config(tmp_path / "beta", "beta")
    with pytest.raises(BackupError, match="backup of 'alpha', not of 'beta'"):
        backups.restore(other, clock, key, tmp_path / "bk")


def test_backup_expires_a_day_after_its_retention_and_is_refused_then(
    app, client, admin_auth, filled, clock, key, tmp_path
):
    client.put("/api/v1/settings", json={"retention": "2d"}, headers=admin_auth)
    manifest = backup(app, clock, key, tmp_path / "bk")
    assert backups.expires_at(manifest) == clock() // 1_000_000 + 3 * 86400
    assert manifest["retention"] == "2d"
    clock.advance(3 * 86400)

    with pytest.raises(BackupError, match="expired"):
        backups.restore(restored_app(tmp_path / "new", clock), clock, key, tmp_path / "bk")


def test_backup_of_a_busy_database_is_consistent(
    app, filled, client, staff_auth, clock, key, tmp_path
):
    # A second connection holds an open write transaction while the snapshot is taken: the
    # snapshot has what was committed, none of what was not.
    config = app.extensions["medcell"].config
    writer = sqlite3.connect(config.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO counters (name, value) VALUES ('uncommitted', 1)")
    try:
        backup(app, clock, key, tmp_path / "bk")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    restored = restored_app(tmp_path / "new", clock)
    backups.restore(restored, clock, key, tmp_path / "bk")
    conn = sqlite3.connect(restored.database)
    assert (
        conn.execute("SELECT count(*) FROM counters WHERE name = 'uncommitted'").fetchone()[0] == 0
    )
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bad_backup_ids_are_refused(app, clock, key, tmp_path):
    with pytest.raises(BackupError, match="16 hexadecimal"):
        backups.make(app.extensions["medcell"].config, clock, key, "../../etc", tmp_path)
    assert os.listdir(tmp_path) == ["alpha"]


def test_a_rotation_between_copy_and_keys_makes_the_backup_copy_again(
    app, filled, clock, key, tmp_path, monkeypatch
):
    # The rotation is made to land exactly where it would hurt: after the database was copied,
    # before its KEKs are read (the key lock is not held during the copy).
    medcell = app.extensions["medcell"]
    real = backups._live_versions
    rotations = []

    def rotating_first(path):
        versions = real(path)
        if not rotations:
            rotations.append(medcell.keyring.rotate(medcell.store.conn()))
        return versions

    monkeypatch.setattr(backups, "_live_versions", rotating_first)
    backup(app, clock, key, tmp_path / "bk")
    monkeypatch.undo()
    config = restored_app(tmp_path / "new", clock)

    backups.restore(config, clock, key, tmp_path / "bk")

    assert rotations[0]["destroyed"] == [1]
    assert sorted(p.name for p in config.key_dir.glob("kek-*")) == ["kek-000002.key"]
    client = open_app(config, clock).test_client()
    staff = login(client, *STAFF)
    response = client.get(f"/api/v1/conversations/{filled['id']}/messages", headers=staff)
    assert [m["body"] for m in response.json["messages"][:2]] == [
        "Blutwerte sind da",
        "Bitte Rückruf",
    ]

"""Key-encryption keys: rotation rewraps without touching payloads; destroyed versions shred."""

import shutil
import sqlite3

import pytest

from services.facility import create_app
from services.facility.core.config import Config
from services.facility.core.errors import ConfigError, KeyDestroyed

from .conftest import make_config


def payloads(app) -> dict:
    conn = app.extensions["medcell"].store.conn()
    return {
        "messages": conn.execute("SELECT id, body FROM messages ORDER BY id").fetchall(),
        "titles": conn.execute("SELECT id, title FROM conversations ORDER BY id").fetchall(),
        "chunks": conn.execute("SELECT attachment_id, seq, data FROM attachment_chunks").fetchall(),
    }


def fill(client, staff_auth, conversation):
    for i in range(3):
        client.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"body": f"Befund {i}"},
            headers=staff_auth,
        )
    client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (__import__("io").BytesIO(b"%PDF-1.4 scan"), "scan.pdf")},
        headers=conversation["patient"],
    )


def test_rotation_keeps_everything_readable_and_payloads_untouched(
    app, client, staff_auth, conversation
):
    fill(client, staff_auth, conversation)
    before = payloads(app)
    keyring = app.extensions["medcell"].keyring
    conn = app.extensions["medcell"].store.conn()

    result = keyring.rotate(conn)

    assert result["version"] == 2 and result["destroyed"] == [1]
    assert result["rewrapped"] == conn.execute("SELECT count(*) FROM record_keys").fetchone()[0]
    assert payloads(app) == before
    assert {v for (v,) in conn.execute("SELECT DISTINCT kek_version FROM record_keys")} == {2}
    messages = client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=staff_auth
    ).json["messages"]
    assert [m["body"] for m in messages[:3]] == ["Befund 0", "Befund 1", "Befund 2"]
    attachment = messages[3]["attachments"][0]
    assert (
        client.get(f"/api/v1/attachments/{attachment['id']}", headers=staff_auth).data
        == b"%PDF-1.4 scan"
    )
    assert not (keyring.key_dir / "kek-000001.key").exists()


def test_destroyed_key_version_makes_an_old_copy_unreadable(
    app, client, staff_auth, conversation, tmp_path
):
    fill(client, staff_auth, conversation)
    store = app.extensions["medcell"].store
    backup = tmp_path / "backup.db"
    store.conn().execute("VACUUM INTO ?", (str(backup),))
    keyring = app.extensions["medcell"].keyring
    keyring.rotate(store.conn())

    old = sqlite3.connect(backup)
    keyring._cache.clear()  # a fresh process: nothing remembered
    record_ids = [r for (r,) in old.execute("SELECT record_id FROM record_keys")]
    assert record_ids
    for record_id in record_ids:
        with pytest.raises(KeyDestroyed):
            keyring.record_key(old, record_id)
    # The live database still opens every record with the new version.
    assert all(keyring.record_key(store.conn(), r) for r in record_ids)


def test_new_records_after_rotation_use_the_new_version(app, client, staff_auth, conversation):
    keyring = app.extensions["medcell"].keyring
    conn = app.extensions["medcell"].store.conn()
    keyring.rotate(conn)
    client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "neu"},
        headers=staff_auth,
    )
    versions = {v for (v,) in conn.execute("SELECT kek_version FROM record_keys")}
    assert versions == {2}


def test_rotation_is_due_after_the_interval(app, clock):
    keyring = app.extensions["medcell"].keyring
    conn = app.extensions["medcell"].store.conn()
    assert not keyring.rotation_due(conn, 86400)
    clock.advance(86401)
    assert keyring.rotation_due(conn, 86400)


def test_shred_all_leaves_no_key_file(app):
    keyring = app.extensions["medcell"].keyring
    # The KEK, the receipt-signing key and the tombstone key.
    assert keyring.shred_all() == 3
    assert not [p for p in keyring.key_dir.iterdir() if p.name.endswith(".key")]


def test_app_refuses_to_start_without_the_keys_its_data_needs(make_app, tmp_path, clock):
    app = make_app("gamma")
    app.extensions["medcell"].store.close()
    shutil.rmtree(tmp_path / "gamma" / "keys")
    with pytest.raises(ConfigError, match="lacks key version"):
        create_app({"MEDCELL": make_config(tmp_path / "gamma", "gamma"), "CLOCK": clock})


@pytest.mark.parametrize("keys", ["data/keys", "."])
def test_key_directory_inside_data_directory_is_refused(tmp_path, keys):
    env = {
        "MEDCELL_FACILITY": "alpha",
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / keys),
    }
    with pytest.raises(ConfigError, match="must not contain each other"):
        Config.from_env(env)


def test_concurrent_first_starts_migrate_once(tmp_path):
    """Gunicorn starts its workers together: each must find the schema ready, none may fail."""
    import threading

    from services.facility.core import store

    db = tmp_path / "race.db"
    errors, versions = [], []

    def start():
        try:
            versions.append(store.Store(db).migrate())
        except Exception as e:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(versions)) == 1

"""A full volume loses nothing: writes get 507, reads and deletions go on, integrity stays ok.

Each test mounts a real 8 MiB tmpfs as the facility's data directory (as root), so SQLite meets
a real ENOSPC; nothing here is simulated.
"""

import errno
import io
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from services.facility import create_app
from services.facility.core import accounts as auth
from services.facility.core import retention, store
from services.facility.core.config import Config
from services.facility.core.errors import StorageFull
from services.facility.core.retention import Sweeper

from .conftest import STAFF, DocumentedClient, login

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

MiB = 1024 * 1024
VOLUME = "8m"
RESERVE = 1 * MiB
FILE = 256 * 1024


@pytest.fixture
def sizes(request) -> tuple[str, int]:
    """The volume's size and the facility's space reserve (a test may parametrize them)."""
    return getattr(request, "param", (VOLUME, RESERVE))


@pytest.fixture
def volume(tmp_path: Path, sizes):
    """A real, size-limited filesystem: a tmpfs (8 MiB by default), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (make test runs as root)")
    mount = tmp_path / "volume"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={sizes[0]}", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small(volume: Path, tmp_path: Path, clock, sizes):
    """A facility whose data directory is the small volume (its keys live elsewhere)."""
    config = Config(
        facility="small",
        facility_name="Small",
        data_dir=volume,
        key_dir=tmp_path / "keys",
        retention=86400,
        scheduler=False,
        space_reserve_bytes=sizes[1],
    )
    app = create_app({"MEDCELL": config, "CLOCK": clock, "TESTING": True})
    auth.create_staff(app.extensions["medcell"].store.conn(), *STAFF, "staff", clock())
    app.test_client_class = DocumentedClient
    yield app
    app.extensions["medcell"].store.close()


def free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def upload(client, conv_id: str, headers: dict, data: bytes):
    return client.post(
        f"/api/v1/conversations/{conv_id}/attachments",
        data={"file": (io.BytesIO(data), "scan.pdf")},
        headers=headers,
        content_type="multipart/form-data",
    )


def fill_with_uploads(
    client, headers: dict, size: int = FILE
) -> tuple[list[str], dict[str, bytes]]:
    """Upload into two conversations until the facility refuses; returns both ids and the files."""
    convs = [
        client.post("/api/v1/conversations", json={}, headers=headers).json["id"] for _ in "ab"
    ]
    stored: dict[str, bytes] = {}
    for i in range(100):
        data = b"%PDF-" + os.urandom(size - 5)
        response = upload(client, convs[i % 2], headers, data)
        if response.status_code != 201:
            assert response.status_code == 507, response.json
            assert response.json["error"]["code"] == "storage_full"
            assert "nothing was stored" in response.json["error"]["message"]
            return convs, stored
        stored[response.json["id"]] = data
    raise AssertionError("the volume took far more than its size")


def fill_the_rest(volume: Path) -> Path:
    """What another tenant of the disk would do: take every byte that is left."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (64 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def count(app, table: str) -> int:
    return (
        app.extensions["medcell"]
        .store.conn()
        .execute(f"SELECT count(*) FROM {table}")
        .fetchone()[0]
    )


def test_full_volume_refuses_uploads_with_507_and_keeps_every_acknowledged_one(small, volume):
    client = small.test_client()
    headers = login(client, *STAFF)
    convs, stored = fill_with_uploads(client, headers)
    assert len(stored) >= 10
    # Refused again and again, with nothing stored by any of the refusals.
    for _ in range(3):
        assert upload(client, convs[0], headers, b"%PDF-" + bytes(FILE)).status_code == 507
    assert count(small, "attachments") == len(stored) == count(small, "messages")
    # Every acknowledged file reads back intact, and the database is sound.
    for att_id, data in stored.items():
        down = client.get(f"/api/v1/attachments/{att_id}", headers=headers)
        assert down.status_code == 200 and down.data == data
    assert integrity(small.extensions["medcell"].config.database) == "ok"
    # The reserve is still held: a deletion would have its room.
    assert small.extensions["medcell"].space.reserve_held() == RESERVE


def test_deletion_works_when_something_else_filled_the_volume(small, volume):
    client = small.test_client()
    headers = login(client, *STAFF)
    convs, stored = fill_with_uploads(client, headers)
    database = small.extensions["medcell"].config.database
    conn = small.extensions["medcell"].store.conn()
    sealed = conn.execute(
        "SELECT data FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment_id "
        "WHERE a.conversation_id = ? LIMIT 1",
        (convs[0],),
    ).fetchone()[0]
    filler = fill_the_rest(volume)
    assert free(volume) < 64 * 1024
    # 100 %: reading and logging in still work (the reserve gives way to the session's write).
    again = login(client, *STAFF)
    listed = client.get(f"/api/v1/conversations/{convs[0]}/messages", headers=again)
    assert listed.status_code == 200 and listed.json["messages"]
    # Deleting frees the conversation completely, with a clean database and an empty WAL.
    deleted = client.delete(f"/api/v1/conversations/{convs[0]}", headers=again)
    assert deleted.status_code in (200, 204)
    assert client.get(f"/api/v1/conversations/{convs[0]}", headers=again).status_code == 404
    assert (
        conn.execute(
            "SELECT count(*) FROM attachments WHERE conversation_id = ?", (convs[0],)
        ).fetchone()[0]
        == 0
    )
    assert database.with_name("facility.db-wal").stat().st_size == 0
    assert integrity(database) == "ok"
    remains = b"".join(p.read_bytes() for p in volume.iterdir() if p.name != "filler")
    assert sealed not in remains
    # The other conversation is untouched.
    kept = client.get(f"/api/v1/conversations/{convs[1]}/messages", headers=again).json
    assert len(kept["messages"]) == sum(1 for _ in kept["messages"]) > 0
    for message in kept["messages"]:
        att = message["attachments"][0]["id"]
        assert client.get(f"/api/v1/attachments/{att}", headers=again).data == stored[att]
    # Once the other tenant's file is gone, the facility takes uploads again, into the freed room.
    filler.unlink()
    assert upload(client, convs[1], again, b"%PDF-" + bytes(FILE)).status_code == 201
    assert small.extensions["medcell"].space.reserve_held() == RESERVE
    assert integrity(database) == "ok"


def test_the_deletion_job_keeps_its_deadline_on_a_full_volume(small, volume, clock):
    client = small.test_client()
    headers = login(client, *STAFF)
    convs, _ = fill_with_uploads(client, headers)
    medcell = small.extensions["medcell"]
    fill_the_rest(volume)
    sweeper = Sweeper(
        medcell.store,
        medcell.conversations,
        medcell.keyring,
        medcell.config.key_rotation_seconds,
    )
    sweeper.start()
    try:
        assert sweeper.wait_passes(1, timeout=60)
        assert count(small, "conversations") == 2
        clock.advance(86400 + 1)  # both conversations are now past their expiry
        sweeper.wake()
        assert sweeper.wait_passes(2, timeout=60)
    finally:
        sweeper.stop()
    assert count(small, "conversations") == 0
    assert count(small, "attachment_chunks") == 0
    assert count(small, "record_keys") == 0
    assert integrity(medcell.config.database) == "ok"
    assert retention.expiry_deadline(medcell.store.conn(), medcell.conversations) is None


def test_a_write_that_meets_a_full_volume_is_rolled_back_and_reported(volume):
    conn = store.connect(volume / "plain.db")
    try:
        conn.execute("CREATE TABLE t (data BLOB)")
        kept = 0
        with pytest.raises(StorageFull):
            for _ in range(100):
                with store.write(conn):
                    conn.execute("INSERT INTO t VALUES (?)", (os.urandom(FILE),))
                kept += 1
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == kept > 0
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


@pytest.mark.parametrize("sizes", [("40m", 8 * MiB)], indirect=True)
def test_the_default_reserve_deletes_large_attachments_on_a_full_volume(small, volume):
    client = small.test_client()
    headers = login(client, *STAFF)
    convs, stored = fill_with_uploads(client, headers, size=3 * MiB)
    assert len(stored) >= 4
    assert small.extensions["medcell"].conversations.shed_chunks == 8
    fill_the_rest(volume)
    for conv in convs:
        deleted = client.delete(f"/api/v1/conversations/{conv}", headers=headers)
        assert deleted.status_code in (200, 204)
    assert count(small, "attachment_chunks") == 0 and count(small, "conversations") == 0
    assert integrity(small.extensions["medcell"].config.database) == "ok"
    assert small.extensions["medcell"].space.reserve_held() == 8 * MiB

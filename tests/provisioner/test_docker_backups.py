"""Backups on the real engine: made under load, restored through the CLI, expired by the supervisor.

What an operator and a patient would check: the backup directory holds nothing readable and no key;
a restore brings back what was acknowledged before the backup, drops what expired meanwhile before
the facility answers, never brings back what a patient deleted after the backup, and is refused
once the supervisor has destroyed the backup's key.
"""

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from .test_docker_receipts import volume_count

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
RETENTION = 60  # seconds: short enough to let a conversation expire between backup and restore


@pytest.fixture(scope="module")
def stack(shared_installation):
    with shared_installation.own_facilities() as installation:
        yield installation


def new_conversation(stack, slug, session, staff, body: str) -> str:
    conv = session.post(f"{stack.api(slug)}/conversations", json={}, headers=staff, timeout=30)
    assert conv.status_code == 201, conv.text
    conv_id = conv.json()["id"]
    posted = session.post(
        f"{stack.api(slug)}/conversations/{conv_id}/messages",
        json={"body": body},
        headers=staff,
        timeout=30,
    )
    assert posted.status_code == 201
    return conv_id


def bodies(stack, slug, session, staff, conv_id) -> list[str]:
    response = session.get(
        f"{stack.api(slug)}/conversations/{conv_id}/messages", headers=staff, timeout=30
    )
    assert response.status_code == 200, response.text
    return [m["body"] for m in response.json()["messages"]]


def test_backup_under_load_restores_what_was_acknowledged_and_drops_what_expired(stack, tmp_path):
    stack.create("clinic", "--name", "Praxis Dr. Müller", "--retention", f"{RETENTION}s")
    session = stack.session()
    staff = stack.login("clinic", session)
    old_started = time.time()
    old = new_conversation(stack, "clinic", session, staff, "alte Nachricht")
    # The second conversation is made late enough to outlive the restore, early enough that the
    # first is still alive when the backup is taken.
    time.sleep(RETENTION * 0.6)
    busy = new_conversation(stack, "clinic", session, staff, "Befund 0")

    acknowledged: list[tuple[float, str]] = []
    stop = threading.Event()

    def write_while_backing_up():
        writer = stack.session()
        n = 1
        while not stop.is_set() and n < 500:
            sent = writer.post(
                f"{stack.api('clinic')}/conversations/{busy}/messages",
                json={"body": f"Befund {n}"},
                headers=staff,
                timeout=30,
            )
            assert sent.status_code == 201
            acknowledged.append((time.time(), f"Befund {n}"))
            n += 1

    writer = threading.Thread(target=write_while_backing_up)
    writer.start()
    time.sleep(0.5)
    backup_started = time.time()
    try:
        made = stack.medcell("facility", "backup", "clinic", str(tmp_path / "bk"))
    finally:
        stop.set()
        writer.join()
    assert made["expires"] and made["backup_id"] and len(acknowledged) > 0

    # Nothing in the backup directory is readable, and its key is not there.
    files = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert files == ["keys.sealed", "manifest.json", "snapshot.sealed"]
    everything = b"".join(p.read_bytes() for p in (tmp_path / "bk").iterdir())
    key = json.loads(Path(made["key_file"]).read_text())["key"]
    assert b"Befund" not in everything and b"alte Nachricht" not in everything
    assert key.encode() not in everything
    for container in (stack.container("clinic"), stack.supervisor, stack.gateway):
        assert key not in stack.logs(container)

    # Later writes are not in the backup; wait until the first conversation has expired.
    new_conversation(stack, "clinic", session, staff, "nach dem Backup")
    while time.time() < old_started + RETENTION + 3:
        time.sleep(0.5)

    restored = stack.medcell("facility", "restore", "clinic", str(tmp_path / "bk"), "--yes")

    assert restored["status"] == "running" and restored["recreated"] is False
    # The first conversation went either by its tombstone (the live facility's deletion job
    # removed it before the restore) or by the restore's own sweep: never does it come back.
    assert restored["expired"] + restored["reapplied"] == 1 and restored["conversations"] == 1
    session = stack.session()
    staff = stack.login("clinic", session)
    listed = session.get(f"{stack.api('clinic')}/conversations", headers=staff, timeout=30)
    assert [c["id"] for c in listed.json()["conversations"]] == [busy]
    got = bodies(stack, "clinic", session, staff, busy)
    before_backup = [body for at, body in acknowledged if at < backup_started]
    assert got[: 1 + len(before_backup)] == ["Befund 0", *before_backup]
    assert set(got) <= {"Befund 0", *(body for _, body in acknowledged)}
    assert (
        session.get(
            f"{stack.api('clinic')}/conversations/{old}/messages", headers=staff, timeout=30
        ).status_code
        == 404
    )


def test_what_a_patient_deleted_after_the_backup_does_not_come_back_with_a_restore(stack, tmp_path):
    stack.create("hno", "--name", "HNO Dr. Weiss")
    session = stack.session()
    staff = stack.login("hno", session)
    kept = new_conversation(stack, "hno", session, staff, "bleibt")
    made = session.post(f"{stack.api('hno')}/conversations", json={}, headers=staff, timeout=30)
    gone, patient = made.json()["id"], {"Authorization": f"Bearer {made.json()['patient_token']}"}
    secret = "Tinnitus seit dem Unfall am Montag"
    posted = session.post(
        f"{stack.api('hno')}/conversations/{gone}/messages",
        json={"body": secret},
        headers=patient,
        timeout=30,
    )
    assert posted.status_code == 201
    stack.medcell("facility", "backup", "hno", str(tmp_path / "bk"))
    deleted = session.delete(
        f"{stack.api('hno')}/conversations/{gone}", headers=patient, timeout=30
    )
    assert deleted.status_code == 200, deleted.text

    restored = stack.medcell("facility", "restore", "hno", str(tmp_path / "bk"), "--yes")

    assert restored["reapplied"] == 1 and restored["conversations"] == 1
    session = stack.session()
    staff = stack.login("hno", session)
    listed = session.get(f"{stack.api('hno')}/conversations", headers=staff, timeout=30)
    assert [c["id"] for c in listed.json()["conversations"]] == [kept]
    receipts = stack.medcell("facility", "receipts", "hno")["receipts"]
    assert [(r["reason"], r["verified"]) for r in receipts] == [("patient", True)]
    # Ids lie in the clear in the database: the kept one is found, nothing of the deleted one.
    found = volume_count(stack, "hno", [kept, gone, secret])
    assert found[0] > 0 and found[1:] == [0, 0]


def test_a_lost_facility_comes_back_from_its_backup(stack, tmp_path):
    stack.create("zahn", "--name", "Zahnarzt Huber")
    session = stack.session()
    staff = stack.login("zahn", session)
    conv = new_conversation(stack, "zahn", session, staff, "Kontrolle in 6 Monaten")
    stack.medcell("facility", "backup", "zahn", str(tmp_path / "bk"))
    # Its container and volumes are lost (`facility delete` would destroy its backups' keys).
    stack.docker.containers.get(stack.container("zahn")).remove(force=True)
    for volume in ("data", "keys"):
        stack.docker.volumes.get(f"{stack.container('zahn')}-{volume}").remove(force=True)

    restored = stack.medcell("facility", "restore", "zahn", str(tmp_path / "bk"))

    assert restored["recreated"] is True and restored["status"] == "running"
    shown = stack.medcell("facility", "show", "zahn")
    assert shown["name"] == "Zahnarzt Huber"
    session = stack.session()
    staff = stack.login("zahn", session)  # its accounts came back with the data
    assert bodies(stack, "zahn", session, staff, conv) == ["Kontrolle in 6 Monaten"]


def test_supervisor_destroys_an_expired_backup_key_and_restore_is_refused(stack, tmp_path):
    stack.create("haut")
    made = stack.medcell("facility", "backup", "haut", str(tmp_path / "bk"))
    key_file = Path(made["key_file"])
    assert key_file.exists()
    # Eight days cannot pass in a test: the key's recorded expiry is moved into the past instead,
    # and the supervisor container (which reads the keys at least once a minute) must find it.
    record = json.loads(key_file.read_text())
    record["expires_at"] = int(time.time()) - 1
    key_file.write_text(json.dumps(record))

    deadline = time.monotonic() + 90
    while key_file.exists():
        assert time.monotonic() < deadline, "the supervisor did not destroy the expired key"
        time.sleep(1)

    assert "backup_key_destroyed" in stack.logs(stack.supervisor)
    with pytest.raises(RuntimeError, match="holds no key for backup"):
        stack.medcell("facility", "restore", "haut", str(tmp_path / "bk"), "--yes")
    assert stack.medcell("facility", "show", "haut")["status"] == "running"


def test_a_facility_larger_than_the_containers_tmp_comes_back_byte_for_byte(stack, tmp_path):
    # The one-off container has a 64 MiB /tmp; the copy's temporary files must not go there.
    stack.create("gross")
    session = stack.session()
    staff = stack.login("gross", session)
    conv = new_conversation(stack, "gross", session, staff, "Aufnahmen")
    sent = {}
    for n in range(4):
        content = b"%PDF-1.4\n" + hashlib.sha256(str(n).encode()).digest() * (20 * MIB // 32)
        uploaded = session.post(
            f"{stack.api('gross')}/conversations/{conv}/attachments",
            files={"file": (f"scan-{n}.pdf", content, "application/pdf")},
            headers=staff,
            timeout=120,
        )
        assert uploaded.status_code == 201, uploaded.text
        sent[uploaded.json()["id"]] = hashlib.sha256(content).hexdigest()

    stack.medcell("facility", "backup", "gross", str(tmp_path / "bk"))
    restored = stack.medcell("facility", "restore", "gross", str(tmp_path / "bk"), "--yes")

    assert restored["conversations"] == 1
    session = stack.session()
    staff = stack.login("gross", session)
    for attachment, digest in sent.items():
        got = session.get(
            f"{stack.api('gross')}/attachments/{attachment}", headers=staff, timeout=120
        )
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == digest

"""`medcell facility backup|restore` over a fake engine whose one-off containers run the real
facility commands on host directories standing in for the volumes."""

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medcell_common.times import iso_utc
from provisioner.host import backup_keys, routes, state_file, tombstones
from provisioner.host.specs import MANAGE
from provisioner.supervisor.backup_expiry import BackupExpiry
from services.facility import create_app
from services.facility.core import accounts
from services.facility.core.config import Config as FacilityConfig

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400


@pytest.fixture
def volumes(tmp_path, fake):
    """Host directories for the fake's volumes; backup and restore run the real commands on them."""
    root = tmp_path / "volumes"
    fake.exec_handler = real_backup_commands(fake, root)
    return root


def real_backup_commands(fake, root: Path):
    """The fake engine's exec: the facility's real backup and restore commands over host
    directories under `root` (one per volume); any other command as the fake answers it."""

    def handler(container, cmd):
        if cmd[: len(MANAGE)] != MANAGE or cmd[len(MANAGE)] not in ("backup", "restore"):
            return fake.facility_app(container, cmd)
        where = {m["bind"]: name for name, m in container.kwargs["volumes"].items()}
        env = {
            **container.kwargs["environment"],
            "PATH": os.environ["PATH"],
            "MEDCELL_DATA_DIR": str(root / where["/data"]),
            "MEDCELL_KEY_DIR": str(root / where["/keys"]),
        }
        args = [where["/backup"] if a == "/backup" else a for a in cmd[len(MANAGE) :]]
        result = subprocess.run(
            [sys.executable, "-m", "services.facility", *args],
            input=container.stdin,
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    return handler


def facility_app(volumes, slug="praxis", retention=7 * DAY, tombstone_dir=""):
    """The facility's app over its (fake) volumes, as its container would run it."""
    config = FacilityConfig(
        tombstone_dir=tombstone_dir,
        facility=slug,
        facility_name="Praxis",
        data_dir=volumes / f"medcell-{slug}-data",
        key_dir=volumes / f"medcell-{slug}-keys",
        retention=retention,
        scheduler=False,
    )
    return create_app({"MEDCELL": config, "TESTING": True})


@pytest.fixture
def praxis(medcell, volumes):
    """A facility `praxis` with a staff account and one conversation holding one message."""
    medcell.json("facility", "create", "praxis", "--name", "Praxis Dr. Müller")
    return {"conversation": staff_message(volumes), "volumes": volumes}


def staff_message(volumes) -> str:
    """A staff account `nurse` in the facility on `volumes`, and one conversation of theirs
    holding one message; the conversation's id."""
    app = facility_app(volumes)
    conn = app.extensions["medcell"].store.conn()
    accounts.create_staff(conn, "nurse", "long enough secret", "staff", time.time_ns() // 1000)
    client = app.test_client()
    token = client.post(
        "/api/v1/login", json={"username": "nurse", "password": "long enough secret"}
    ).json["token"]
    staff = {"Authorization": f"Bearer {token}"}
    conv = client.post("/api/v1/conversations", json={"title": "Knie"}, headers=staff).json
    client.post(
        f"/api/v1/conversations/{conv['id']}/messages", json={"body": "Röntgen ok"}, headers=staff
    )
    app.extensions["medcell"].store.close()
    return conv["id"]


def messages(volumes, conversation: str) -> list[str]:
    app = facility_app(volumes)
    try:
        medcell = app.extensions["medcell"]
        conn = medcell.store.conn()
        return [m["body"] for m in medcell.conversations.messages(conn, conversation)]
    finally:
        app.extensions["medcell"].store.close()


@pytest.mark.process
def test_backup_writes_sealed_files_and_keeps_the_key_only_in_the_installation(
    medcell, praxis, fake, config, tmp_path
):
    target = tmp_path / "offsite" / "praxis-1"

    result = medcell.json("facility", "backup", "praxis", str(target))

    assert sorted(os.listdir(target)) == ["keys.sealed", "manifest.json", "snapshot.sealed"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {0o600}
    key_file = Path(result["key_file"])
    assert key_file.parent == config.home / "backups" / "keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    record = backup_keys.load(config, result["backup_id"])
    assert record.facility == "praxis" and record.expires == result["expires"]
    everything = b"".join(p.read_bytes() for p in target.iterdir())
    assert (
        record.key not in everything
        and json.loads(key_file.read_text())["key"].encode() not in everything
    )
    # The key went over stdin only: not into the one-off container's settings.
    spec = next(c for c in fake.created if c["name"].startswith("medcell-praxis_backup_"))
    assert spec["network_mode"] == "none" and spec["stdin_open"] is True
    assert json.loads(key_file.read_text())["key"] not in json.dumps(spec)
    assert not list((config.home / "backups" / "staging").iterdir())
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["name"] == "Praxis Dr. Müller" and manifest["expires"] == result["expires"]


@pytest.mark.process
def test_backups_lists_what_can_still_be_restored(medcell, praxis, runtime, tmp_path):
    made = medcell.json("facility", "backup", "praxis", str(tmp_path / "bk"))

    assert medcell.json("facility", "backups", "praxis") == [
        {k: made[k] for k in ("backup_id", "facility", "created", "expires")}
    ]
    assert medcell.json("facility", "backups", "other") == []
    runtime.backups.clock = lambda: time.time() + 8 * DAY + 1
    assert medcell.json("facility", "backups") == []


def test_backup_refuses_a_directory_inside_medcell_home(medcell, praxis, config):
    result = medcell("facility", "backup", "praxis", str(config.home / "backups" / "mine"))

    assert result.exit_code != 0 and "never lie beside its key" in result.output
    assert not (config.home / "backups" / "mine").exists()


def test_backup_refuses_a_directory_that_holds_other_files(medcell, praxis, tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("x")

    result = medcell("facility", "backup", "praxis", str(target))

    assert result.exit_code != 0 and "must be a new or empty directory" in result.output
    assert os.listdir(target) == ["notes.txt"]


@pytest.mark.process
def test_restore_over_the_facility_needs_yes_then_brings_its_data_back(
    medcell, praxis, config, tmp_path
):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    volumes = praxis["volumes"]
    app = facility_app(volumes)  # a conversation made after the backup
    conn = app.extensions["medcell"].store.conn()
    later, _ = app.extensions["medcell"].conversations.create(conn, "später")
    app.extensions["medcell"].store.close()

    refused = medcell("facility", "restore", "praxis", str(target))
    assert refused.exit_code != 0 and "add --yes" in refused.output

    result = medcell.json("facility", "restore", "praxis", str(target), "--yes")

    assert result["conversations"] == 1 and result["recreated"] is False
    assert result["status"] == "running"
    assert messages(volumes, praxis["conversation"]) == ["Röntgen ok"]
    app = facility_app(volumes)
    conn = app.extensions["medcell"].store.conn()
    ids = [r[0] for r in conn.execute("SELECT id FROM conversations")]
    assert later not in ids and ids == [praxis["conversation"]]
    assert routes.read_routes(config)["facilities"]["praxis"]["state"] == "running"


def lose(fake, volumes, slug="praxis"):
    """The facility's container and volumes vanish (a lost disk), not `facility delete`."""
    fake.containers_by_name.pop(f"medcell-{slug}")
    for name in (f"medcell-{slug}-data", f"medcell-{slug}-keys"):
        fake.volumes_by_name.pop(name)
        subprocess.run(["rm", "-rf", str(volumes / name)], check=True)


@pytest.mark.process
def test_a_lost_facility_is_recreated_from_its_backup(medcell, praxis, fake, config, tmp_path):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    lose(fake, praxis["volumes"])

    result = medcell.json("facility", "restore", "praxis", str(target))

    assert result["recreated"] is True and result["status"] == "running"
    assert messages(praxis["volumes"], praxis["conversation"]) == ["Röntgen ok"]
    shown = medcell.json("facility", "show", "praxis")
    assert shown["name"] == "Praxis Dr. Müller" and shown["retention"] == "7d"
    assert state_file.load(config, "praxis").desired == "running"


@pytest.mark.process
def test_deleting_a_facility_destroys_the_keys_of_all_its_backups(
    medcell, praxis, fake, config, tmp_path
):
    medcell.json("facility", "backup", "praxis", str(tmp_path / "one"))
    medcell.json("facility", "backup", "praxis", str(tmp_path / "two"))

    deleted = medcell.json("facility", "delete", "praxis", "--yes")

    assert deleted["backup_keys_destroyed"] == 2
    assert backup_keys.all_keys(config) == []
    result = medcell("facility", "restore", "praxis", str(tmp_path / "one"))
    assert result.exit_code != 0 and "holds no key for backup" in result.output
    assert "medcell-praxis" not in fake.containers_by_name


@pytest.mark.process
def test_a_failed_recreation_leaves_nothing_behind(medcell, praxis, fake, config, tmp_path):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    lose(fake, praxis["volumes"])
    (target / "keys.sealed").write_bytes(b"\0" * 64)

    result = medcell("facility", "restore", "praxis", str(target))

    assert result.exit_code != 0 and "does not open with its key" in result.output
    assert fake.names() == set()
    assert not state_file.state_path(config, "praxis").exists()


@pytest.mark.process
def test_an_expired_backup_is_refused_and_its_key_destroyed(
    medcell, praxis, runtime, config, tmp_path
):
    target = tmp_path / "bk"
    made = medcell.json("facility", "backup", "praxis", str(target))
    runtime.backups.clock = lambda: time.time() + 8 * DAY + 1  # 7d retention + 1 day

    result = medcell("facility", "restore", "praxis", str(target), "--yes")

    assert result.exit_code != 0
    assert f"backup {made['backup_id']} of praxis expired at {made['expires']}" in result.output
    assert backup_keys.load(config, made["backup_id"]) is None
    assert not Path(made["key_file"]).exists()
    assert messages(praxis["volumes"], praxis["conversation"]) == ["Röntgen ok"]


@pytest.mark.process
def test_a_forged_manifest_cannot_keep_a_backup_openable_past_retention_plus_a_day(
    medcell, praxis, fake, runtime, config, tmp_path
):
    real = fake.exec_handler

    def forging(container, cmd):
        # The facility's backup command claims its backup may be opened until 2099.
        code, out, err = real(container, cmd)
        if "backup" in cmd:
            manifest = json.loads(out.strip().splitlines()[-1])
            manifest["created"] = manifest["expires"] = "2099-01-01T00:00:00Z"
            out = json.dumps(manifest) + "\n"
        return code, out, err

    fake.exec_handler = forging
    target = tmp_path / "bk"
    made = medcell.json("facility", "backup", "praxis", str(target))
    after = time.time()

    record = backup_keys.load(config, made["backup_id"])
    assert record.expires_at <= after + 8 * DAY  # 7d retention limit + 1 day, from our clock
    assert made["expires"] < "2099" and made["created"] < "2099"
    later = record.expires_at + 1
    BackupExpiry(config, lambda: later).tick()  # the supervisor keeps the clamped deadline
    assert backup_keys.load(config, made["backup_id"]) is None
    runtime.backups.clock = lambda: later
    result = medcell("facility", "restore", "praxis", str(target), "--yes")
    assert result.exit_code != 0 and "can never be restored" in result.output


@pytest.mark.process
def test_a_backup_without_its_key_here_is_refused(medcell, praxis, config, tmp_path):
    target = tmp_path / "bk"
    made = medcell.json("facility", "backup", "praxis", str(target))
    Path(made["key_file"]).unlink()  # e.g. copied to another installation

    result = medcell("facility", "restore", "praxis", str(target), "--yes")

    assert result.exit_code != 0 and "holds no key for backup" in result.output


@pytest.mark.process
def test_a_backup_restores_only_into_its_own_slug(medcell, praxis, tmp_path):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))

    result = medcell("facility", "restore", "other", str(target))

    assert result.exit_code != 0 and "is a backup of 'praxis', not of 'other'" in result.output


@pytest.mark.process
def test_a_tampered_backup_changes_nothing_and_the_facility_runs_on(
    medcell, praxis, fake, tmp_path
):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["retention"] = "1d"
    (target / "manifest.json").write_text(json.dumps(manifest))

    result = medcell("facility", "restore", "praxis", str(target), "--yes")

    assert result.exit_code != 0 and "does not open with its key" in result.output
    assert fake.containers_by_name["medcell-praxis"].status == "running"
    assert messages(praxis["volumes"], praxis["conversation"]) == ["Röntgen ok"]


def test_the_supervisor_destroys_keys_when_their_backups_expire(config, caplog):
    now = [1_000_000.0]
    for backup_id, expires in (("00000000000000aa", 1_000_100), ("00000000000000bb", 1_000_900)):
        backup_keys.save(
            config,
            backup_keys.BackupKey(backup_id, "praxis", "c", "e", expires, os.urandom(32)),
        )
    leftover = backup_keys.staging_dir(config, "00000000000000aa")  # a crashed command's files
    leftover.mkdir(parents=True)
    (leftover / "snapshot.sealed").write_bytes(b"sealed")
    expiry = BackupExpiry(config, lambda: now[0])
    expiry.tick()
    assert len(backup_keys.all_keys(config)) == 2

    now[0] = 1_000_100.0
    with caplog.at_level(logging.INFO, logger="medcell.supervisor"):
        expiry.tick()  # within the rescan minute: due by the remembered earliest expiry

    assert [k.backup_id for k in backup_keys.all_keys(config)] == ["00000000000000bb"]
    assert not leftover.exists()
    assert [
        r.fields for r in caplog.records if r.fields.get("event") == "backup_key_destroyed"
    ] == [{"event": "backup_key_destroyed", "slug": "praxis", "backup_id": "00000000000000aa"}]
    now[0] = 1_000_900.0
    expiry.tick()
    assert backup_keys.all_keys(config) == []
    assert list((config.home / "backups" / "keys").iterdir()) == []


def patient_deletes(volumes, config, conversation: str, slug="praxis") -> None:
    """The facility deletes a conversation as its container would: dropping its tombstone."""
    drop = tombstones.drop_dir(config, slug)
    drop.parent.mkdir(parents=True, exist_ok=True)
    app = facility_app(volumes, tombstone_dir=str(drop))
    medcell = app.extensions["medcell"]
    assert medcell.conversations.delete(medcell.store.conn(), conversation, "patient")
    medcell.store.close()


def new_conversation(volumes) -> str:
    app = facility_app(volumes)
    medcell = app.extensions["medcell"]
    conv_id, _ = medcell.conversations.create(medcell.store.conn(), "neu")
    medcell.store.close()
    return conv_id


def receipts_of(volumes) -> list[str]:
    app = facility_app(volumes)
    try:
        medcell = app.extensions["medcell"]
        return [r["reason"] for r in medcell.conversations.receipts.recent(medcell.store.conn())]
    finally:
        app.extensions["medcell"].store.close()


@pytest.mark.process
def test_a_restore_never_brings_back_what_the_patient_deleted_after_the_backup(
    medcell, praxis, config, tmp_path
):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    volumes = praxis["volumes"]
    patient_deletes(volumes, config, praxis["conversation"])

    result = medcell.json("facility", "restore", "praxis", str(target), "--yes")

    assert result["reapplied"] == 1 and result["conversations"] == 0
    app = facility_app(volumes)
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    app.extensions["medcell"].store.close()
    assert receipts_of(volumes) == ["patient"]
    data = b"".join(p.read_bytes() for p in (volumes / "medcell-praxis-data").iterdir())
    assert "Röntgen ok".encode() not in data and praxis["conversation"].encode() not in data
    kept = (config.home / "backups" / "tombstones" / "praxis.json").read_text()
    assert praxis["conversation"] not in kept and "Knie" not in kept


@pytest.mark.process
def test_tombstones_outlive_the_facilitys_disk(medcell, praxis, fake, config, tmp_path):
    target = tmp_path / "bk"
    medcell.json("facility", "backup", "praxis", str(target))
    patient_deletes(praxis["volumes"], config, praxis["conversation"])
    BackupExpiry(config, time.time).tick()  # the supervisor collects them within a minute
    lose(fake, praxis["volumes"])
    subprocess.run(["rm", "-rf", str(config.facility_socket_dir("praxis"))], check=True)

    result = medcell.json("facility", "restore", "praxis", str(target))

    assert result["recreated"] is True and result["reapplied"] == 1
    assert result["conversations"] == 0
    assert receipts_of(praxis["volumes"]) == ["patient"]


@pytest.mark.process
def test_deleting_a_facility_forgets_its_tombstones(medcell, praxis, config, tmp_path):
    medcell.json("facility", "backup", "praxis", str(tmp_path / "bk"))
    patient_deletes(praxis["volumes"], config, praxis["conversation"])
    BackupExpiry(config, time.time).tick()
    assert tombstones.FileTombstones(config).slugs() == ["praxis"]

    patient_deletes(praxis["volumes"], config, new_conversation(praxis["volumes"]))  # not collected

    medcell.json("facility", "delete", "praxis", "--yes")

    assert tombstones.FileTombstones(config).slugs() == []
    assert not tombstones.drop_dir(config, "praxis").exists()


def drop_file(config, name: str, data: bytes, slug="praxis"):
    drop = tombstones.drop_dir(config, slug)
    drop.mkdir(parents=True, exist_ok=True)
    (drop / name).write_bytes(data)
    return drop / name


def tombstone(deleted_at: int, mark: str = "ab" * 32) -> dict:
    return {"mark": mark, "deleted_at": deleted_at, "reason": "staff"}


def test_tombstones_go_once_older_than_every_restorable_backup_of_their_facility(config):
    now = [2_000_000.0]
    store = tombstones.FileTombstones(config)
    created = 1_990_000
    backup_keys.save(
        config,
        backup_keys.BackupKey(
            "00000000000000aa", "praxis", iso_utc(created), "e", 2_100_000, os.urandom(32)
        ),
    )
    older, newer = tombstone(created - 100, "0a" * 32), tombstone(created + 100, "0b" * 32)
    drop_file(config, "1" * 32 + ".json", json.dumps({"tombstones": [older, newer]}).encode())
    expiry = BackupExpiry(config, lambda: now[0])

    expiry.tick()

    assert store.since("praxis", 0) == [newer]
    assert list(tombstones.drop_dir(config, "praxis").iterdir()) == []
    now[0] = 2_100_000.0 + tombstones.IN_FLIGHT_SECONDS  # the backup's key has expired
    expiry.tick()
    assert store.slugs() == [] and store.since("praxis", 0) == []


def test_what_a_facility_drops_is_read_as_hostile(config, tmp_path):
    store = tombstones.FileTombstones(config)
    good = tombstone(1_000, "cd" * 32)
    (tmp_path / "secret").write_text(json.dumps({"tombstones": [tombstone(5)]}))
    drop_file(config, "a" * 32 + ".json", b"x" * (5 * 1024 * 1024))
    drop_file(config, "b" * 32 + ".json", b'{"tombstones": [{"mark": "Knie", "deleted_at": 1}]}')
    drop_file(config, "c" * 32 + ".json", b'{"tombstones": [], "title": "Knie"}')
    drop_file(config, "d" * 32 + ".json", json.dumps({"tombstones": [good]}).encode())
    drop_file(config, "e" * 32 + ".json", b"{}").unlink()
    (tombstones.drop_dir(config, "praxis") / ("e" * 32 + ".json")).symlink_to(tmp_path / "secret")

    assert tombstones.collect(config, store, "praxis") == 1

    assert store.since("praxis", 0) == [good]
    assert list(tombstones.drop_dir(config, "praxis").iterdir()) == []

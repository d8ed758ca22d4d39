"""Deletion receipts on the real engine: through the gateway, on the volume, and by the CLI."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest
import requests

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
TITLE = "MARKER-RECEIPT-TITLE-Jf62pe"
BODY = "MARKER-RECEIPT-BODY-Uw83kd"


@pytest.fixture(scope="module")
def stack(shared_installation):
    with shared_installation.own_facilities() as installation:
        installation.create("rcpt", "--idle", "never")
        yield installation


def session(stack) -> requests.Session:
    return stack.session()


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def volume_count(stack, slug: str, needles: list[str]) -> list[int]:
    """How often each needle occurs in the raw bytes of every file on the facility's data volume."""
    code = (
        "import json, pathlib, sys\n"
        "data = b''.join(p.read_bytes() for p in sorted(pathlib.Path('/data').rglob('*'))"
        " if p.is_file())\n"
        "print(json.dumps([data.count(n.encode()) for n in json.loads(sys.argv[1])]))\n"
    )
    out = docker.from_env().containers.run(
        f"medcell-facility:{os.environ.get('MEDCELL_IMAGE_TAG', 'latest')}",
        ["python3", "-c", code, json.dumps(needles)],
        volumes={f"{stack.container(slug)}-data": {"bind": "/data", "mode": "ro"}},
        network_mode="none",
        labels={"medcell.instance": stack.prefix},
        remove=True,
        user="10001:10001",
    )
    return json.loads(out.decode())


def test_patient_deletion_through_the_gateway_leaves_only_a_receipt_that_verifies(stack, tmp_path):
    s, base = session(stack), f"{stack.origin('rcpt')}"
    admin = stack.facilities["rcpt"]
    token = s.post(
        f"{base}/api/v1/login",
        json={"username": admin["admin_user"], "password": admin["admin_password"]},
    ).json()["token"]
    staff = {"Authorization": f"Bearer {token}"}
    conv = s.post(f"{base}/api/v1/conversations", json={"title": TITLE}, headers=staff).json()
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    s.post(
        f"{base}/api/v1/conversations/{conv['id']}/messages", json={"body": BODY}, headers=patient
    )
    assert volume_count(stack, "rcpt", [conv["id"]])[0] > 0  # ids are stored in the clear

    deleted = s.delete(f"{base}/api/v1/conversations/{conv['id']}", headers=patient)
    assert deleted.status_code == 200
    receipt = deleted.json()["receipt"]
    assert receipt["reason"] == "patient" and receipt["verified"] is True
    assert receipt["facility"] == "rcpt"
    assert receipt["counts"] == {"messages": 1, "attachments": 0, "record_keys": 2}
    # On the volume: nothing of the conversation, but its receipt.
    left = volume_count(stack, "rcpt", [conv["id"], receipt["receipt_id"]])
    assert left[0] == 0 and left[1] >= 1

    assert s.get(f"{base}/api/v1/receipts/{receipt['receipt_id']}").json() == receipt
    key = s.get(f"{base}/api/v1/receipt-key").json()
    (tmp_path / "r.json").write_text(json.dumps(receipt))
    (tmp_path / "k.json").write_text(json.dumps(key))
    ok = cli(
        stack, "receipt", "verify", str(tmp_path / "r.json"), "--key", str(tmp_path / "k.json")
    )
    assert ok.returncode == 0, ok.stderr
    by_facility = cli(stack, "receipt", "verify", str(tmp_path / "r.json"), "--facility", "rcpt")
    assert by_facility.returncode == 0, by_facility.stderr
    tampered = copy.deepcopy(receipt)
    tampered["reason"] = "expiry"
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    bad = cli(stack, "receipt", "verify", str(tmp_path / "t.json"), "--facility", "rcpt")
    assert bad.returncode == 1 and bad.stderr.startswith("Error: the signature does not match")

    listed = stack.medcell("facility", "receipts", "rcpt")
    assert receipt in listed["receipts"] and listed["receipt_key"] == key


def test_facility_delete_prints_a_final_wipe_receipt_that_verifies_afterwards(stack, tmp_path):
    stack.create("wiped")
    output = stack.medcell("facility", "delete", "wiped", "--yes")
    stack.facilities.pop("wiped", None)
    assert output["receipt"]["reason"] == "facility_wipe"
    assert output["receipt"]["verified"] is True
    saved = tmp_path / "deleted.json"
    saved.write_text(json.dumps(output))
    checked = cli(stack, "receipt", "verify", str(saved), "--key", str(saved))
    assert checked.returncode == 0, checked.stderr

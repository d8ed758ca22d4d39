"""`medcell facility receipts`, `medcell receipt verify` and the wipe receipt of `facility delete`.

The engine is the fake one, but the management commands behind it are the facility's real ones,
run over a real SQLite database and key directory per volume: the receipts are real.
"""

import copy
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.facility.__main__ import cli as facility_cli
from services.facility.core import open_facility
from services.facility.core.config import Config as FacilityConfig

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml


class RealFacilityCommands:
    """An exec handler that runs services.facility's commands over one directory per volume."""

    def __init__(self, fake, root: Path):
        self.fake, self.root = fake, root
        self.runs: list[tuple[str, str]] = []  # (container, command)

    def dirs(self, container) -> tuple[str, Path, Path]:
        mounts = {m["bind"]: v for v, m in container.kwargs["volumes"].items()}
        slug = container.kwargs["environment"]["MEDCELL_FACILITY"]
        return slug, self.root / mounts["/data"], self.root / mounts["/keys"]

    def __call__(self, container, cmd: list[str]):
        if cmd[3] not in ("receipts", "receipt-key", "wipe"):
            return self.fake.facility_app(container, cmd)
        slug, data, keys = self.dirs(container)
        self.runs.append((container.name, cmd[3]))
        env = {
            "MEDCELL_FACILITY": slug,
            "MEDCELL_DATA_DIR": str(data),
            "MEDCELL_KEY_DIR": str(keys),
        }
        result = CliRunner().invoke(facility_cli, cmd[3:], env=env)
        return result.exit_code, result.stdout, result.stderr

    def facility(self, fake, slug: str):
        """The facility's own core over the same directories (to make deletions to prove)."""
        container = fake.containers_by_name[f"medcell-{slug}"]
        slug, data, keys = self.dirs(container)
        config = FacilityConfig(
            facility=slug, facility_name=slug, data_dir=data, key_dir=keys, retention=86400
        )
        return open_facility(config, lambda: time.time_ns() // 1000)


@pytest.fixture
def commands(fake, tmp_path) -> RealFacilityCommands:
    handler = RealFacilityCommands(fake, tmp_path / "volumes")
    fake.exec_handler = handler
    return handler


@pytest.fixture
def alpha(medcell, commands, fake):
    """Facility alpha with one conversation deleted by staff and one left with 2 messages."""
    assert medcell("up").exit_code == 0
    assert medcell("facility", "create", "alpha").exit_code == 0
    facility = commands.facility(fake, "alpha")
    convs, conn = facility.conversations, facility.store.conn()
    gone, _ = convs.create(conn, "deleted one")
    convs.add_message(conn, gone, "staff", "hello")
    convs.delete(conn, gone, reason="staff")
    kept, _ = convs.create(conn, "kept one")
    for text in ("a", "b"):
        convs.add_message(conn, kept, "patient", text)
    facility.store.close()
    return facility


def test_facility_receipts_lists_signed_content_free_receipts(medcell, alpha):
    listed = medcell.json("facility", "receipts", "alpha")
    (receipt,) = listed["receipts"]
    assert receipt["reason"] == "staff" and receipt["verified"] is True
    assert receipt["counts"] == {"messages": 1, "attachments": 0, "record_keys": 2}
    assert listed["receipt_key"]["algorithm"] == "Ed25519"
    text = medcell("facility", "receipts", "alpha")
    assert text.exit_code == 0
    assert receipt["receipt_id"] in text.stdout and "staff" in text.stdout
    assert listed["receipt_key"]["public_key"] in text.stdout


def test_a_stopped_facility_is_read_in_a_one_off_container_and_stays_stopped(
    medcell, alpha, commands, fake
):
    assert medcell("facility", "stop", "alpha").exit_code == 0
    listed = medcell.json("facility", "receipts", "alpha")
    assert len(listed["receipts"]) == 1
    assert commands.runs[-1] == ("medcell-alpha-shred", "receipts")
    assert fake.containers_by_name["medcell-alpha"].status != "running"
    assert "medcell-alpha-shred" not in fake.containers_by_name


def save(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_verify_accepts_a_genuine_receipt_and_refuses_a_tampered_one(medcell, alpha, tmp_path):
    listed = medcell.json("facility", "receipts", "alpha")
    receipt = listed["receipts"][0]
    key = save(tmp_path / "key.json", listed["receipt_key"])
    good = save(tmp_path / "receipt.json", receipt)
    checked = medcell.json("receipt", "verify", str(good), "--key", str(key))
    assert checked == {"valid": True, "receipt": receipt}
    by_facility = medcell("receipt", "verify", str(good), "--facility", "alpha")
    assert by_facility.exit_code == 0 and "is valid" in by_facility.stdout

    tampered = copy.deepcopy(receipt)
    tampered["counts"]["messages"] = 0
    refused = medcell(
        "receipt", "verify", str(save(tmp_path / "t.json", tampered)), "--key", str(key)
    )
    assert refused.exit_code == 1
    assert "Error: the signature does not match" in refused.stderr
    assert refused.stdout == ""


def test_verify_refuses_another_facilitys_key_and_a_bare_base64_key_works(
    medcell, alpha, commands, fake, tmp_path
):
    assert medcell("facility", "create", "beta").exit_code == 0
    receipt = medcell.json("facility", "receipts", "alpha")["receipts"][0]
    beta_key = medcell.json("facility", "receipts", "beta")["receipt_key"]
    alpha_key = medcell.json("facility", "receipts", "alpha")["receipt_key"]
    file = save(tmp_path / "r.json", receipt)
    wrong = save(tmp_path / "beta.json", beta_key)
    assert medcell("receipt", "verify", str(file), "--key", str(wrong)).exit_code == 1
    assert medcell("receipt", "verify", str(file), "--facility", "beta").exit_code == 1
    bare = tmp_path / "alpha.pub"
    bare.write_text(alpha_key["public_key"] + "\n")
    assert medcell("receipt", "verify", str(file), "--key", str(bare)).exit_code == 0


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "exactly one of --key FILE or --facility"),
        (["--key", "KEY", "--facility", "alpha"], "exactly one of --key FILE or --facility"),
        (["--key", "MISSING"], "cannot read the key"),
    ],
)
def test_verify_explains_bad_arguments_in_one_line(medcell, alpha, tmp_path, args, message):
    receipt = medcell.json("facility", "receipts", "alpha")["receipts"][0]
    file = save(tmp_path / "r.json", receipt)
    key = save(tmp_path / "k.json", {"algorithm": "Ed25519", "public_key": "AAAA"})
    args = [
        str(key) if a == "KEY" else str(tmp_path / "nope") if a == "MISSING" else a for a in args
    ]
    result = medcell("receipt", "verify", str(file), *args)
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_refuses_a_file_that_is_no_receipt(medcell, alpha, tmp_path):
    key = save(tmp_path / "k.json", medcell.json("facility", "receipts", "alpha")["receipt_key"])
    not_receipt = save(tmp_path / "x.json", {"receipt_id": "x", "extra": 1})
    result = medcell("receipt", "verify", str(not_receipt), "--key", str(key))
    assert result.exit_code == 1 and "Error: not a valid receipt" in result.stderr


def test_delete_prints_a_final_wipe_receipt_that_verifies_after_the_facility_is_gone(
    medcell, alpha, commands, fake, tmp_path
):
    output = medcell.json("facility", "delete", "alpha", "--yes")
    receipt = output["receipt"]
    assert receipt["reason"] == "facility_wipe" and receipt["verified"] is True
    assert receipt["counts"] == {"messages": 2, "attachments": 0, "record_keys": 3}
    assert ("medcell-alpha", "wipe") in commands.runs
    assert not any("alpha" in name for name in fake.names())
    # The whole --json output is both the receipt file and the key file.
    saved = save(tmp_path / "deleted-alpha.json", output)
    checked = medcell("receipt", "verify", str(saved), "--key", str(saved))
    assert checked.exit_code == 0, checked.output


def test_delete_of_an_asleep_or_stopped_facility_wipes_in_a_one_off_container(
    medcell, alpha, commands
):
    assert medcell("facility", "stop", "alpha").exit_code == 0
    output = medcell.json("facility", "delete", "alpha", "--yes")
    assert output["receipt"]["counts"]["messages"] == 2
    assert ("medcell-alpha-shred", "wipe") in commands.runs


def test_delete_goes_on_without_a_receipt_when_the_facility_cannot_give_one(medcell, fake):
    # The stand-in facility knows no `wipe`: deletion must not depend on the receipt.
    assert medcell("up").exit_code == 0
    assert medcell("facility", "create", "gamma").exit_code == 0
    result = medcell("facility", "delete", "gamma", "--yes", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["receipt"] is None
    assert "no wipe receipt for gamma" in result.stderr
    assert not any("gamma" in name for name in fake.names())

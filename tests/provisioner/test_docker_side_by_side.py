"""Two operators at once on a real installation: `medcell up` and `medcell facility delete`."""

import json
import subprocess
import sys

import pytest

from provisioner.cli.commands import Runtime
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend

pytestmark = pytest.mark.docker


def medcell(installation, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", *args],
        env=installation,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def test_up_and_a_delete_side_by_side_both_succeed(installation):
    runtime = Runtime(Config.from_env(installation), DockerBackend())
    runtime.stack.up()
    for slug in ("keep", "gone"):
        runtime.facilities.create(slug)
    delete = medcell(installation, "facility", "delete", "gone", "--yes", "--json")
    up = medcell(installation, "up", "--json")
    deleted, up_result = finished(delete), finished(up)
    assert deleted[0] == 0, deleted[2]
    assert up_result[0] == 0, up_result[2]
    assert json.loads(deleted[1])["deleted"] is True
    assert json.loads(up_result[1])["status"] == "running"
    listed = {f["slug"]: f["status"] for f in runtime.facilities.list()}
    assert listed == {"keep": "running"}
    runtime.facilities.delete("keep")

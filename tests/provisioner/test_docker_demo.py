"""The demo facility on the real engine: created by `make run`'s step, named in German, intact."""

import subprocess
import sys

import pytest

from devsupport import Installation
from devsupport.waiting import wait_for_status

pytestmark = pytest.mark.docker


def test_demo_facility_shows_its_german_name_through_the_gateway(tmp_path):
    installation = Installation(tmp_path / "home", stem="mcdemo")
    installation.facilities["demo"] = {}  # so that remove() deletes it, also after a failure
    try:
        installation.medcell("up")
        shown = subprocess.run(
            [sys.executable, "-m", "provisioner.cli.demo"],
            env=installation.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert shown.returncode == 0, shown.stderr
        assert f"{installation.origin('demo')}/" in shown.stdout
        base = f"{installation.origin('demo')}"
        assert wait_for_status(f"{base}/healthz", 200, 60, verify=False) == 200
        listed = {f["slug"]: f["name"] for f in installation.medcell("facility", "list")}
        assert listed["demo"] == "Praxis Dr. Müller"
        page = installation.session().get(f"{base}/login", timeout=30)
        assert page.status_code == 200
        assert "<title>Anmeldung für das Team – Praxis Dr. Müller</title>" in page.text
    finally:
        installation.remove()

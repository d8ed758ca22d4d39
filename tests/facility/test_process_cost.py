"""What one awake facility process holds: only what serving needs, and nothing an export left."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

ROOT = Path(__file__).resolve().parents[2]

# Needed only by an export, a backup or a management command: never by the serving process.
NOT_FOR_SERVING = (
    "fpdf",
    "fontTools",
    "PIL",
    "fhir",  # fhir.resources (the tests' FHIR check)
    "pydantic",
    "services.facility.core.backups",
    "services.facility.core.sealed_file",
    "services.facility.__main__",
)

# Runs in a fresh interpreter: starts the app as the server does, exports a conversation with a
# photo as PDF and as FHIR, and reports which of the modules above were loaded, and when.
SCRIPT = """
import io, json, sys
from PIL import Image  # only to make the photo; dropped from sys.modules below

photo = io.BytesIO()
Image.new("RGB", (2400, 1600), (200, 120, 90)).save(photo, "JPEG")
for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
    del sys.modules[name]

NAMES = json.loads(sys.argv[1])

def loaded():
    return sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in NAMES))

from services.facility import create_app
from services.facility.core import accounts, open_facility
from services.facility.core.config import Config

config = Config.from_env()
app = create_app()
at_start = loaded()
facility = open_facility(config, lambda: 1_900_000_000_000_000)
accounts.create_staff(facility.store.conn(), "admin", "a long enough password", "admin",
                      1_700_000_000_000_000)
client = app.test_client()
token = client.post("/api/v1/login",
                    json={"username": "admin", "password": "a long enough password"}).json["token"]
auth = {"Authorization": "Bearer " + token}
conv = client.post("/api/v1/conversations", json={"title": "Befund"}, headers=auth).json
base = "/api/v1/conversations/" + conv["id"]
client.post(base + "/messages", json={"body": "Guten Tag"}, headers=auth)
client.post(base + "/attachments", headers=auth,
            data={"file": (io.BytesIO(photo.getvalue()), "foto.jpg", "image/jpeg")})
with client.get(base + "/export?format=pdf", headers=auth) as pdf:
    pdf_data = pdf.get_data()
with client.get(base + "/export?format=fhir", headers=auth) as fhir:
    bundle = json.loads(fhir.get_data())
print(json.dumps({
    "at_start": at_start,
    "after_exports": loaded(),
    "pdf": [pdf.status_code, pdf_data[:5].decode("latin-1"), b"/Subtype /Image" in pdf_data],
    "fhir": [fhir.status_code, bundle["resourceType"]],
}))
"""


def run_fresh_app(tmp_path: Path) -> dict:
    env = {
        "MEDCELL_FACILITY": "lean",
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
        "MEDCELL_SCHEDULER": "off",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(NOT_FOR_SERVING)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_fresh_app_loads_nothing_that_only_exports_backups_or_commands_need(tmp_path):
    report = run_fresh_app(tmp_path)
    assert report["at_start"] == []


def test_exports_leave_nothing_of_theirs_in_the_serving_process(tmp_path):
    report = run_fresh_app(tmp_path)
    assert report["pdf"] == [200, "%PDF-", True]  # the photo is in it
    assert report["fhir"] == [200, "Bundle"]
    assert report["after_exports"] == []


# As `python -m services` starts the server: werkzeug's development server stays out until used.
SERVER_START = """
import json, sys
from services.__main__ import _defer_werkzeug_serving

_defer_werkzeug_serving()
from services.facility.server import create_app

create_app()
at_start = sorted(m for m in ("http.server", "http.client", "ssl") if m in sys.modules)
from werkzeug.serving import make_server  # still there for whoever asks

print(json.dumps({"at_start": at_start, "loaded_on_use": "http.server" in sys.modules,
                  "real": make_server.__module__}))
"""


def test_the_server_starts_without_werkzeugs_development_server(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SERVER_START],
        env={
            "MEDCELL_FACILITY": "lean",
            "MEDCELL_DATA_DIR": str(tmp_path / "data"),
            "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
            "MEDCELL_SCHEDULER": "off",
            "PATH": "/usr/bin:/bin",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"at_start": [], "loaded_on_use": True, "real": "werkzeug.serving"}

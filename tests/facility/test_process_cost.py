"""What one awake facility process holds: only what serving needs, and nothing an export left."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devsupport import FacilityServer

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


def imported_by(log: str) -> list[str]:
    """The modules a process imported, read from its PYTHONPROFILEIMPORTTIME lines on stderr."""
    marker = "import time:"
    return [
        line.rsplit("|", 1)[1].strip()
        for line in log.splitlines()
        if line.startswith(marker) and "|" in line and "self [us]" not in line
    ]


def not_for_serving(modules: list[str]) -> list[str]:
    return sorted(
        {m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_FOR_SERVING)}
    )


def a_photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2400, 1600), (200, 120, 90)).save(out, "JPEG")
    return out.getvalue()


def test_the_running_server_loads_nothing_that_only_exports_backups_or_commands_need(tmp_path):
    """The real server process (`python -m services`), an ordinary morning's requests, then a PDF
    export with a photo and a FHIR export: the interpreter's own import log (stderr) shows what
    the process loaded, at start and later; the PDF's child has its own stderr, not this one."""
    server = FacilityServer(tmp_path, "lean", MEDCELL_SCHEDULER="off", PYTHONPROFILEIMPORTTIME="1")
    admin = server.create_admin()
    server.start()
    try:
        session = requests.Session()
        session.trust_env = False
        url = server.url
        token = session.post(url + "/api/v1/login", json=admin).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        conv = session.post(url + "/api/v1/conversations", json={"title": "Befund"}).json()
        base = f"{url}/api/v1/conversations/{conv['id']}"
        assert session.post(base + "/messages", json={"body": "Guten Tag"}).status_code == 201
        assert session.get(url + "/api/v1/conversations").ok
        upload = session.post(base + "/attachments", files={"file": ("foto.jpg", a_photo())})
        assert upload.status_code == 201
        assert session.get(f"{url}/api/v1/attachments/{upload.json()['id']}").ok
        assert session.get(base + "/messages").ok
        assert session.get(url + "/").status_code in (200, 302)
        after_requests = imported_by(server.log_path.read_text())

        pdf = session.get(base + "/export?format=pdf")
        fhir = session.get(base + "/export?format=fhir")
        assert (pdf.status_code, pdf.content[:5]) == (200, b"%PDF-")
        assert b"/Subtype /Image" in pdf.content  # the photo is in it
        assert (fhir.status_code, fhir.json()["resourceType"]) == (200, "Bundle")
        after_exports = imported_by(server.log_path.read_text())
    finally:
        server.stop()

    assert "services.facility.server" in after_requests  # the log is read right
    assert not_for_serving(after_requests) == []
    assert not_for_serving(after_exports) == []
    # werkzeug's development server and what it drags in stay out too (services/__main__.py)
    assert not {"werkzeug.serving", "http.server", "http.client", "ssl"} & set(after_exports)


# As `python -m services` starts the server: what serving never uses stays out until used.
# Each of these cost a wake CPU (docs/figures.md): werkzeug's development server, Flask's command
# line metadata, the types only Flask's JSON encoder checks for, the logging set-up's parser and
# the PDF's process launcher.
NOT_AT_START = (
    "http.server",
    "http.client",
    "ssl",
    "importlib.metadata",
    "zipfile",
    "decimal",
    "logging.config",
    "logging.handlers",
    "subprocess",
)
SERVER_START = f"""
import json, sys
from services.__main__ import _defer_unused_modules

_defer_unused_modules()
from services.facility.server import configure_logging, create_app

configure_logging()
create_app()
loaded = {{name for name, module in sys.modules.items() if getattr(module, "__spec__", None)}}
at_start = sorted(set({NOT_AT_START!r}) & loaded)  # placeholders have no spec
from werkzeug.serving import make_server  # still there for whoever asks
import importlib.metadata
import uuid

print(json.dumps({{"at_start": at_start, "loaded_on_use": "http.server" in sys.modules,
                  "real": make_server.__module__,
                  "flask": importlib.metadata.version("flask").count(".") >= 1,
                  "uuid": len(str(uuid.uuid4()))}}))
"""


def test_the_server_starts_without_what_serving_never_uses(tmp_path):
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
    assert report == {
        "at_start": [],
        "loaded_on_use": True,
        "real": "werkzeug.serving",
        "flask": True,
        "uuid": 36,
    }

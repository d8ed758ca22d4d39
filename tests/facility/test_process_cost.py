"""What one awake facility process holds: only what serving needs, and nothing an export left."""

import ctypes
import io
import json
import mmap
import os
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


def a_noisy_photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((2400, 1600), 60).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def admin_conversation(server, admin: dict, title: str) -> tuple[requests.Session, str]:
    """A session signed in as the facility's admin, and the API address of a new conversation."""
    session = requests.Session()
    session.trust_env = False
    token = session.post(server.url + "/api/v1/login", json=admin).json()["token"]
    session.headers["Authorization"] = f"Bearer {token}"
    conv = session.post(server.url + "/api/v1/conversations", json={"title": title}).json()
    return session, f"{server.url}/api/v1/conversations/{conv['id']}"


def test_the_running_server_loads_nothing_that_only_exports_backups_or_commands_need(tmp_path):
    """The real server process (`python -m services`), an ordinary morning's requests, then a PDF
    export with a photo and a FHIR export: the interpreter's own import log (stderr) shows what
    the process loaded, at start and later; the PDF's child has its own stderr, not this one."""
    server = FacilityServer(tmp_path, "lean", MEDCELL_SCHEDULER="off", PYTHONPROFILEIMPORTTIME="1")
    admin = server.create_admin()
    server.start()
    try:
        url = server.url
        session, base = admin_conversation(server, admin, "Befund")
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
# line and its metadata, the types only Flask's JSON encoder checks for, the logging set-up's
# parser and the PDF's process launcher.
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
    "click",
    "flask.cli",
)
SERVER_START = f"""
import gc, json, sys
from services.__main__ import prepare

prepare()
collecting_at_start = gc.isenabled()
from services.facility.core.config import Config
from services.facility.server import configure_logging, serving_app

configure_logging()
app = serving_app(Config.from_env())
loaded = {{name for name, module in sys.modules.items() if getattr(module, "__spec__", None)}}
at_start = sorted(set({NOT_AT_START!r}) & loaded)  # placeholders have no spec
cycle = []
cycle.append(cycle)  # garbage only the collector can find
del cycle
collector = {{"at_start": collecting_at_start, "serving": gc.isenabled(),
             "frozen": gc.get_freeze_count() > 10000, "collects": gc.collect() >= 1}}
from werkzeug.serving import make_server  # still there for whoever asks
import importlib.metadata
import uuid
import click

app.cli.add_command(click.Command("hello"))  # Flask's command group, made real on use

print(json.dumps({{"at_start": at_start, "loaded_on_use": "http.server" in sys.modules,
                  "real": make_server.__module__,
                  "flask": importlib.metadata.version("flask").count(".") >= 1,
                  "uuid": len(str(uuid.uuid4())), "commands": sorted(app.cli.commands),
                  "collector": collector}}))
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
        "commands": ["hello"],
        # off while the start makes its objects, on for serving, which does not walk them again
        "collector": {"at_start": False, "serving": True, "frozen": True, "collects": True},
    }


def resident_bytes(path: Path) -> int:
    """How much of a file the kernel holds in its page cache (mincore over a mapping of it)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    page = mmap.PAGESIZE
    with path.open("rb") as f:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
    assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
    try:
        pages = (ctypes.c_ubyte * ((size + page - 1) // page))()
        assert libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), pages) == 0
        return sum(p & 1 for p in pages) * page
    finally:
        libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size))


def filesystem_of(path: Path) -> str:
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    under = [(point, kind) for point, kind in mounts if path.is_relative_to(point)]
    return max(under, key=lambda m: len(m[0]))[1]


def database_in_page_cache(data: Path) -> int:
    return sum(resident_bytes(p) for p in data.glob("facility.db*") if not p.name.endswith("shm"))


def test_an_export_leaves_the_database_it_read_out_of_the_page_cache(tmp_path):
    """docker stats counts page cache read twice as the container's own: an export of a
    conversation with photos must not leave the photos' pages cached for the facility's life."""
    if filesystem_of(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("a file in memory cannot leave the page cache: it lives there")
    server = FacilityServer(tmp_path, "cache", MEDCELL_SCHEDULER="off")
    admin = server.create_admin()
    server.start()
    try:
        session, base = admin_conversation(server, admin, "Fotos")
        photo = a_noisy_photo()  # ~3 MiB, as a phone's
        for name in ("a.jpg", "b.jpg"):
            upload = session.post(base + "/attachments", files={"file": (name, photo)})
            assert upload.status_code == 201
        os.sync()  # written back, as hours after the upload: only clean pages can be dropped
        for fmt in ("fhir", "pdf"):
            for path in server.data.glob("facility.db*"):  # nothing cached before the export
                with path.open("rb") as f:
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            exported = session.get(base + f"/export?format={fmt}")
            assert exported.status_code == 200
            assert len(exported.content) > 0
            # the export read both photos from the database; they are not kept
            assert database_in_page_cache(server.data) < 1024 * 1024, fmt
    finally:
        server.stop()

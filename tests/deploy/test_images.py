"""The medcell images as an operator meets them: built by deploy/build-images.sh, run hardened."""

import base64
import http.client
import io
import json
import os
import shlex
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import docker
import pytest

from devsupport.unix_http import unix_get

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "deploy" / "build-images.sh"
TAG = os.environ.get("MEDCELL_IMAGE_TAG") or "latest"
IMAGES = {name: f"medcell-{name}:{TAG}" for name in ("facility", "gateway", "supervisor")}
# Each image's /app holds its own package, nothing else.
# Every image carries medcell_common, the rules and log format they share.
APP_CONTENTS = {
    "facility": {"medcell_common": None, "services": None},
    "gateway": {"medcell_common": None, "gateway": None},
    "supervisor": {"medcell_common": None, "provisioner": None},
}
# What each image's Python must import, and what belongs to the other images only.
DEPENDENCIES = {
    "facility": (
        {"Flask", "waitress", "PyNaCl", "sqlite-utils", "segno", "fpdf2"},
        {"docker", "requests", "gunicorn"},
    ),
    "gateway": ({"gunicorn"}, {"Flask", "PyNaCl", "docker", "requests"}),
    # click is the operator's CLI's, which the supervisor image does not carry
    "supervisor": ({"docker", "requests"}, {"Flask", "gunicorn", "PyNaCl", "click"}),
}
# Objects these tests create carry this label, so a leftover is easy to find and never looks
# like a facility to the provisioner.
TEST_LABEL = {"medcell.test": "deploy-images"}
HARDENED = {
    "read_only": True,
    "tmpfs": {"/tmp": ""},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "user": "10001:10001",
}


def run_build() -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=1800
    )


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="module")
def built(client: docker.DockerClient) -> dict[str, str]:
    """Build (or confirm) the images once; return each image's id."""
    result = run_build()
    assert result.returncode == 0, result.stderr
    return {name: client.images.get(ref).id for name, ref in IMAGES.items()}


def run_in(client: docker.DockerClient, name: str, command: list[str], **options) -> str:
    """Run a one-off command in a hardened container of the image; return its output."""
    output = client.containers.run(
        IMAGES[name], command, remove=True, labels=TEST_LABEL, **{**HARDENED, **options}
    )
    return output.decode()


def python_in(client: docker.DockerClient, name: str, code: str, **options) -> str:
    return run_in(client, name, ["python3", "-c", code], **options).strip()


@pytest.mark.parametrize("name", IMAGES)
def test_image_runs_as_the_medcell_user(client, built, name):
    config = client.images.get(built[name]).attrs["Config"]
    assert config["User"] in ("10001", "10001:10001")
    # Without overriding the user: what the image itself starts as.
    output = client.containers.run(
        built[name], ["id"], remove=True, labels=TEST_LABEL, read_only=True
    ).decode()
    assert output.startswith("uid=10001(medcell) gid=10001(medcell)")


@pytest.mark.parametrize("name", IMAGES)
def test_image_carries_the_oci_labels(client, built, name):
    labels = client.images.get(built[name]).labels
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert labels["org.opencontainers.image.title"] == f"medcell-{name}"
    assert labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.version"] == version
    assert len(labels["medcell.build-hash"]) == 64


def test_only_the_gateway_declares_a_healthcheck(client, built):
    healthcheck = client.images.get(built["gateway"]).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"][0] == "CMD"
    assert any("/healthz" in part for part in healthcheck["Test"])
    # An idle facility must cost nothing: no probe process forked in it every few seconds.
    for name in ("facility", "supervisor"):
        assert client.images.get(built[name]).attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]


@pytest.mark.parametrize("name", IMAGES)
def test_image_has_no_compiler(client, built, name):
    found = python_in(
        client,
        name,
        "import shutil; print(' '.join(c for c in ('gcc', 'cc', 'c++', 'clang', 'ld', 'as', 'make')"
        " if shutil.which(c)))",
    )
    assert found == ""


@pytest.mark.parametrize("name", IMAGES)
def test_app_holds_only_what_the_service_needs(client, built, name):
    listing = python_in(
        client,
        name,
        "import os\n"
        "for top, dirs, files in os.walk('/app'):\n"
        "    dirs[:] = [d for d in dirs if d != '__pycache__']\n"
        "    for entry in dirs + files:\n"
        "        print(os.path.relpath(os.path.join(top, entry), '/app'))",
    ).splitlines()
    expected = APP_CONTENTS[name]
    assert {path.split("/")[0] for path in listing} == set(expected)
    deploy = {p.split("/", 1)[1] for p in listing if p.startswith("deploy/")}
    assert deploy == expected.get("deploy", set())
    names = {part for path in listing for part in path.split("/")}
    assert not names & {"tests", ".git", "pyproject.toml", "Makefile", "wheels"}
    assert not [path for path in listing if path.rsplit("/", 1)[-1].startswith(".")]


def test_supervisor_image_carries_the_host_operations_and_the_supervisor_but_not_the_cli(
    client, built
):
    listing = python_in(
        client, "supervisor", "import os; print(' '.join(sorted(os.listdir('/app/provisioner'))))"
    ).split()
    assert set(listing) - {"__pycache__"} == {"__init__.py", "host", "supervisor"}


@pytest.mark.parametrize("name", IMAGES)
def test_wheels_are_not_left_in_the_image(client, built, name):
    assert python_in(client, name, "import os; print(os.path.exists('/tmp/wheels'))") == "False"
    history = client.images.get(built[name]).history()
    assert not [layer for layer in history if "/tmp/wheels" in (layer.get("CreatedBy") or "")]


@pytest.mark.parametrize("name", IMAGES)
def test_image_has_only_its_own_dependencies(client, built, name):
    frozen = run_in(client, name, ["pip", "list", "--format=freeze"]).splitlines()
    installed = {line.split("==")[0].lower() for line in frozen}
    needed, foreign = DEPENDENCIES[name]
    assert {n.lower() for n in needed} <= installed
    assert not {n.lower() for n in foreign} & installed


def test_gateway_has_nginx(client, built):
    assert "nginx/1.22" in run_in(client, "gateway", ["sh", "-c", "nginx -v 2>&1"])


def test_facility_dependencies_and_aes_gcm_work_on_a_read_only_root(client, built):
    output = python_in(
        client,
        "facility",
        "import os, flask, waitress, sqlite_utils, segno, nacl.bindings as b\n"
        "key, nonce = os.urandom(32), os.urandom(12)\n"
        "sealed = b.crypto_aead_aes256gcm_encrypt(b'note', b'aad', nonce, key)\n"
        "print(b.crypto_aead_aes256gcm_decrypt(sealed, b'aad', nonce, key).decode())",
    )
    assert output == "note"


# A conversation with a big photo, exported to PDF inside the image, as the app does it.
PDF_IN_IMAGE = """
import base64, io, sys
from PIL import Image
from services.facility.core import pdf
photo = io.BytesIO()
Image.new("RGB", (6000, 4000), (40, 120, 200)).save(photo, "JPEG", quality=95)
export = {
    "facility_name": "Praxis Müller", "title": "Knie", "exported_at": 1764633600000000,
    "exported_by": "nurse", "reference": {"name": "Ayşe Kılıç-Weiß"},
    "messages": [{"id": "m1", "author": "patient", "body": "Grüße aus Łódź — Привет",
                  "created_at": 1764633600000000,
                  "attachments": [{"id": "a1", "filename": "knie.jpg", "size": photo.tell(),
                                   "content_type": "image/jpeg"}]}],
}
document = pdf.build(export, lambda _: [photo.getvalue()])
import os
assert os.listdir("/tmp") == [], os.listdir("/tmp")  # made in memory: no temporary file
sys.stdout.write(base64.b64encode(document).decode())
"""


def test_facility_image_exports_a_unicode_pdf_within_its_memory_limit(client, built):
    from pypdf import PdfReader

    # Detached and read from its log: a quickly exiting run(remove=True) may cut stdout at 64 KiB.
    container = client.containers.run(
        IMAGES["facility"],
        ["python3", "-c", PDF_IN_IMAGE],
        detach=True,
        labels=TEST_LABEL,
        mem_limit="256m",
        working_dir="/app",
        **HARDENED,
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()[-2000:]
        encoded = container.logs(stdout=True, stderr=False)
    finally:
        container.remove(force=True)
    reader = PdfReader(io.BytesIO(base64.b64decode(encoded)))
    text = reader.pages[0].extract_text()
    assert "Praxis Müller" in text and "Ayşe Kılıç-Weiß" in text
    assert "Grüße aus Łódź — Привет" in text  # DejaVu is in the image: nothing replaced
    (image,) = reader.pages[0].images
    assert max(image.image.size) == 1600  # scaled down before embedding


@pytest.fixture
def volumes(client: docker.DockerClient):
    """Two fresh named volumes, removed afterwards."""
    suffix = uuid.uuid4().hex[:10]
    created = [
        client.volumes.create(f"medcell-test-{kind}-{suffix}", labels=TEST_LABEL)
        for kind in ("data", "keys")
    ]
    yield created
    for volume in created:
        volume.remove(force=True)


def test_new_volumes_at_data_and_keys_are_private_to_the_service_user(client, built, volumes):
    data, keys = volumes
    output = python_in(
        client,
        "facility",
        "import os\n"
        "for path in ('/data', '/keys'):\n"
        "    s = os.stat(path)\n"
        "    print(path, s.st_uid, s.st_gid, oct(s.st_mode & 0o777))",
        volumes={data.name: {"bind": "/data"}, keys.name: {"bind": "/keys"}},
    )
    assert output.splitlines() == ["/data 10001 10001 0o700", "/keys 10001 10001 0o700"]


def wait_until_healthy(container, timeout: float = 60) -> str:
    """Docker's own verdict on a container whose image declares a health check."""
    deadline = time.monotonic() + timeout
    status = "starting"
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            break
        status = container.attrs["State"]["Health"]["Status"]
        if status == "healthy":
            break
        time.sleep(0.5)
    return status if container.status == "running" else container.status


def healthz_on_socket(path: Path) -> tuple[int, dict] | None:
    """GET /healthz over the facility's socket, as the supervisor asks it; None if no answer."""
    try:
        status, body = unix_get(path, "/healthz", timeout=2)
        return status, json.loads(body or b"null")
    except (OSError, ValueError, http.client.HTTPException):
        return None


def wait_for_socket_health(container, path: Path, timeout: float = 60) -> tuple[int, dict] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            return None
        if path.is_socket() and (answer := healthz_on_socket(path)) is not None:
            return answer
        time.sleep(0.2)
    return None


@pytest.fixture
def socket_dir(tmp_path: Path) -> Path:
    """A host dir for the socket, writable by the facility's uid, as the provisioner makes it."""
    path = tmp_path / "run"
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, 10001, 10001)
        path.chmod(0o711)
    else:
        path.chmod(0o777)
    return path


def test_facility_container_becomes_healthy_on_its_socket_without_a_network(
    client, built, volumes, socket_dir
):
    data, keys = volumes
    container = client.containers.run(
        built["facility"],
        detach=True,
        labels=TEST_LABEL,
        environment={"MEDCELL_FACILITY": "imagetest"},
        volumes={
            data.name: {"bind": "/data"},
            keys.name: {"bind": "/keys"},
            str(socket_dir): {"bind": "/run/medcell", "mode": "rw"},
        },
        network_mode="none",
        mem_limit="256m",
        pids_limit=128,
        **HARDENED,
    )
    try:
        answer = wait_for_socket_health(container, socket_dir / "app.sock")
        assert answer == (200, {"status": "ok"}), container.logs().decode()[-2000:]
        container.reload()
        assert container.status == "running"
        assert "Health" not in container.attrs["State"]  # nobody but us probes it
        assert set(container.attrs["NetworkSettings"]["Networks"]) <= {"none"}
    finally:
        container.remove(force=True)


def test_gateway_container_becomes_healthy_with_a_self_signed_certificate(client, built):
    # The operator's configuration and the run directory are bind mounts in real use; here the
    # container makes throwaway ones on its tmpfs, so the test needs no files on the host.
    config, run = "/tmp/gateway-config", "/tmp/gateway-run"
    routes = shlex.quote(json.dumps({"version": 2, "generation": 1, "facilities": {}}))
    script = (
        f"mkdir -p {config}/tls {run}/facilities && echo {routes} > {config}/routes.json"
        " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
        f" -keyout {config}/tls/key.pem -out {config}/tls/cert.pem 2>/dev/null"
        " && exec python -m gateway serve"
    )
    container = client.containers.run(
        built["gateway"],
        ["sh", "-c", script],
        detach=True,
        labels=TEST_LABEL,
        environment={"MEDCELL_GATEWAY_CONFIG": config, "MEDCELL_GATEWAY_RUN_DIR": run},
        **HARDENED,
    )
    try:
        status = wait_until_healthy(container)
        assert status == "healthy", container.logs().decode()[-2000:]
    finally:
        container.remove(force=True)


def test_supervisor_code_loads_on_a_read_only_root_without_a_network(client, built):
    output = python_in(
        client,
        "supervisor",
        "import docker, provisioner.supervisor.service, provisioner.host.lifecycle;"
        " print('loaded')",
        network_mode="none",
    )
    assert output == "loaded"


@pytest.mark.parametrize("name", IMAGES)
def test_no_secret_in_the_image_its_labels_or_its_environment(client, built, name):
    config = client.images.get(built[name]).attrs["Config"]
    for entry in [*config["Env"], *(f"{k}={v}" for k, v in config["Labels"].items())]:
        name_, value = entry.split("=", 1)
        # A name like MEDCELL_KEY_DIR may say where secrets are made at run time, nothing more.
        if any(word in name_.upper() for word in ("SECRET", "PASS", "TOKEN", "KEY")):
            assert value.startswith("/"), entry
    # Keys are made at run time (facility: on its volume; gateway: mounted): none ships.
    found = run_in(
        client,
        name,
        [
            "sh",
            "-c",
            "grep -rl 'PRIVATE KEY' /app /data /keys /etc/medcell-gateway 2>/dev/null; true",
        ],
    )
    assert found.strip() == ""


def test_building_again_rebuilds_nothing(client, built):
    result = run_build()
    assert result.returncode == 0, result.stderr
    assert {name: client.images.get(ref).id for name, ref in IMAGES.items()} == built
    assert "up to date" in result.stderr
    assert "building" not in result.stderr


@pytest.mark.parametrize("name", IMAGES)
def test_every_image_applies_the_shared_rules(client, built, name):
    refused = python_in(
        client,
        name,
        "from medcell_common.rules import parse_duration\n"
        "try:\n    parse_duration('07d')\nexcept ValueError:\n    print('refused')",
    )
    assert refused == "refused"

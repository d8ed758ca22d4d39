"""Sleep and wake on the real engine: a private installation with gateway, supervisor, facilities.

What an operator and a patient would check: an idle facility has no process left, the first request
wakes it and is answered as usual, deletion stays on time while it sleeps, and an engine or
supervisor restart brings everything back without a command.
"""

import hashlib
import os
import secrets
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
import requests

import devsupport

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


class Installation(devsupport.Installation):
    """The harness's installation, with what sleep and wake are checked by."""

    def __init__(self, home: Path):
        super().__init__(home, stem="mcsleep", MEDCELL_IDLE_TIMEOUT="15m")
        self.docker = docker.from_env()

    @property
    def admins(self) -> dict[str, dict]:
        return self.facilities

    def status(self, slug: str) -> str:
        rows = self.medcell("facility", "list")
        return {row["slug"]: row["status"] for row in rows}[slug]

    def wait_status(self, slug: str, wanted: str, timeout: float) -> float:
        """Seconds it took until `facility list` said `wanted`; fails after `timeout`."""
        started = time.monotonic()
        while True:
            status = self.status(slug)
            if status == wanted:
                return time.monotonic() - started
            assert time.monotonic() - started < timeout, f"{slug} still {status}, not {wanted}"
            time.sleep(0.5)

    def running(self, slug: str) -> bool:
        return self.docker.containers.get(self.container(slug)).status == "running"

    def login(self, slug: str, session: requests.Session | None = None) -> dict:
        session = session or self.session()
        admin = self.admins[slug]
        response = session.post(
            f"{self.origin(slug)}/api/v1/login",
            json={"username": admin["admin_user"], "password": admin["admin_password"]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def starts_since(self, slug: str, since: float) -> int:
        """How often Docker started the facility's container since `since` (unix seconds)."""
        events = self.docker.events(
            since=int(since),
            until=int(time.time()) + 1,
            filters={"container": self.container(slug), "event": "start"},
            decode=True,
        )
        return sum(1 for _ in events)

    def volume_rows(self, slug: str, table: str) -> int:
        """Rows in a table of the facility's database, read from its volume's raw files.

        Read in a one-off container without network, so the facility itself is not asked (asking
        it through the API would wake it). The files (with any WAL) are copied first and the copy
        opened, so the volume is never written to.
        """
        code = (
            "import shutil, sqlite3, os\n"
            "for name in os.listdir('/data'):\n"
            "    if name.startswith('facility.db'): shutil.copy(f'/data/{name}', f'/tmp/{name}')\n"
            f"print(sqlite3.connect('/tmp/facility.db').execute('SELECT count(*) FROM {table}')"
            ".fetchone()[0])"
        )
        out = self.docker.containers.run(
            f"medcell-facility:{os.environ.get('MEDCELL_IMAGE_TAG', 'latest')}",
            ["python3", "-c", code],
            volumes={f"{self.container(slug)}-data": {"bind": "/data", "mode": "ro"}},
            network_mode="none",
            labels={"medcell.instance": self.prefix},
            remove=True,
            user="10001:10001",
        )
        return int(out.decode().strip())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    installation = Installation(tmp_path_factory.mktemp("sleep") / "home")
    try:
        installation.medcell("up")
        yield installation
    finally:
        installation.remove()


def test_idle_facility_falls_asleep_with_no_process_left(stack):
    stack.create("idle", "--idle", "3s")
    assert stack.status("idle") == "running"
    stack.wait_status("idle", "asleep", timeout=60)
    container = stack.docker.containers.get(stack.container("idle"))
    assert container.status == "exited"
    assert stack.medcell("facility", "show", "idle")["status"] == "asleep"


def test_first_get_and_post_after_sleep_are_answered_as_usual(stack):
    stack.create("held", "--idle", "3s")
    session = stack.session()
    staff = stack.login("held", session)
    base = f"{stack.origin('held')}/api/v1"
    cid = session.post(f"{base}/conversations", json={}, headers=staff).json()["id"]
    stack.wait_status("held", "asleep", timeout=60)

    listed = session.get(f"{base}/conversations", headers=staff, timeout=30)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["conversations"]] == [cid]
    stack.wait_status("held", "asleep", timeout=60)

    body = {"body": "Die Schwellung ist zurückgegangen."}
    sent = session.post(f"{base}/conversations/{cid}/messages", json=body, headers=staff)
    assert sent.status_code == 201, sent.text
    messages = session.get(f"{base}/conversations/{cid}/messages", headers=staff).json()
    assert [m["body"] for m in messages["messages"]] == [body["body"]]


def test_parallel_first_requests_cause_one_wake(stack):
    stack.create("crowd", "--idle", "3s")
    stack.wait_status("crowd", "asleep", timeout=60)
    since = time.time() - 1

    def first_request(_):
        return stack.session().get(f"{stack.origin('crowd')}/healthz", timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(first_request, range(12)))
    assert statuses == [200] * 12
    assert stack.starts_since("crowd", since) == 1


def test_unknown_facility_wakes_nothing(stack):
    time.sleep(1.5)  # Docker counts events in whole seconds: none of the tests before may count
    since = time.time()
    response = stack.session().get(f"{stack.origin('no-such-practice')}/healthz", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"]
    starts = stack.docker.events(
        since=int(since),
        until=int(time.time()) + 1,
        filters={"label": f"medcell.instance={stack.prefix}", "event": "start"},
        decode=True,
    )
    assert list(starts) == []


def test_no_sleep_during_a_long_download(stack):
    stack.create("dl", "--idle", "2s")
    session = stack.session()
    staff = stack.login("dl", session)
    base = f"{stack.origin('dl')}/api/v1"
    cid = session.post(f"{base}/conversations", json={}, headers=staff).json()["id"]
    content = secrets.token_bytes(20 * MIB)
    attached = session.post(
        f"{base}/conversations/{cid}/attachments",
        files={"file": ("scan.pdf", b"%PDF-1.4\n" + content, "application/pdf")},
        headers=staff,
        timeout=120,
    )
    assert attached.status_code == 201, attached.text

    digest = hashlib.sha256()
    seen_running = []
    with session.get(
        f"{base}/attachments/{attached.json()['id']}", headers=staff, stream=True, timeout=60
    ) as download:
        assert download.status_code == 200
        started = time.monotonic()
        for chunk in download.iter_content(256 * 1024):
            digest.update(chunk)
            time.sleep(0.05)  # a slow phone: the download outlasts the idle time several times
            seen_running.append(stack.running("dl"))
        took = time.monotonic() - started
    assert digest.hexdigest() == hashlib.sha256(b"%PDF-1.4\n" + content).hexdigest()
    assert took > 4  # really longer than the 2 s idle time
    # While the facility was still sending, it was never stopped under the download.
    assert all(seen_running[: len(seen_running) // 2])


def test_conversation_in_a_sleeping_facility_is_deleted_on_time(stack):
    # Long enough that it falls asleep first: a facility whose next deadline is less than a
    # minute away does that work before it sleeps.
    stack.create("expiry", "--idle", "3s", "--retention", "2m")
    session = stack.session()
    staff = stack.login("expiry", session)
    base = f"{stack.origin('expiry')}/api/v1"
    created = session.post(f"{base}/conversations", json={"title": "Befund"}, headers=staff)
    cid = created.json()["id"]
    sent = session.post(
        f"{base}/conversations/{cid}/messages", json={"body": "Laborwerte"}, headers=staff
    )
    assert sent.status_code == 201
    listed = session.get(f"{base}/conversations", headers=staff).json()["conversations"]
    expires_at = datetime.fromisoformat(listed[0]["expires_at"].replace("Z", "+00:00"))

    stack.wait_status("expiry", "asleep", timeout=60)
    assert stack.volume_rows("expiry", "conversations") == 1
    assert stack.volume_rows("expiry", "messages") == 1

    deadline = expires_at.timestamp() + 60
    while stack.volume_rows("expiry", "conversations") and time.time() < deadline:
        time.sleep(2)
    assert time.time() < deadline, "not deleted within 60 s of expires_at"
    assert stack.volume_rows("expiry", "messages") == 0
    assert stack.volume_rows("expiry", "record_keys") == 0
    # The deadline woke it without any request, and it went back to sleep by itself.
    stack.wait_status("expiry", "asleep", timeout=60)
    assert datetime.now(UTC) > expires_at


def test_supervisor_restart_keeps_sleeping_facilities_and_wakes_them(stack):
    stack.create("resume", "--idle", "3s")
    stack.wait_status("resume", "asleep", timeout=60)
    stack.docker.containers.get(f"{stack.prefix}-supervisor").restart(timeout=10)
    assert stack.status("resume") == "asleep"
    response = stack.session().get(f"{stack.origin('resume')}/healthz", timeout=30)
    assert response.status_code == 200
    stack.wait_status("resume", "asleep", timeout=60)


def test_gateway_holds_no_docker_socket_and_facilities_no_network(stack):
    stack.create("plain", "--idle", "never")
    gateway = stack.docker.api.inspect_container(f"{stack.prefix}-gateway")
    mounts = [m.get("Source", "") + " " + m.get("Destination", "") for m in gateway["Mounts"]]
    assert not [m for m in mounts if "docker.sock" in m]
    facility = stack.docker.api.inspect_container(stack.container("plain"))
    assert facility["HostConfig"]["NetworkMode"] == "none"
    assert not [m for m in facility["Mounts"] if "docker.sock" in m.get("Source", "")]
    supervisor = stack.docker.api.inspect_container(f"{stack.prefix}-supervisor")
    assert supervisor["HostConfig"]["RestartPolicy"]["Name"] in ("unless-stopped", "always")
    assert supervisor["HostConfig"]["CapDrop"] == ["ALL"]
    # `never` keeps it awake past any idle timeout a test could wait for.
    assert stack.status("plain") == "running"


def test_operator_sleep_and_wake_commands(stack):
    stack.create("manual", "--idle", "never")
    slept = stack.medcell("facility", "sleep", "manual")
    assert slept["status"] == "asleep"
    assert not stack.running("manual")
    woke = stack.medcell("facility", "wake", "manual")
    assert woke["status"] == "running"
    assert stack.running("manual")
    status = stack.medcell("status")
    assert status["facilities"]["running"] >= 1
    with pytest.raises(RuntimeError, match="Error: no facility no-such-practice"):
        stack.medcell("facility", "wake", "no-such-practice")


def _restart_engine() -> None:
    """Stop the Docker Engine the way a host shutdown does, then start it again."""
    pid_file = Path("/var/run/docker.pid")
    if (
        Path("/run/systemd/system").is_dir()
        and subprocess.run(["systemctl", "is-active", "--quiet", "docker"]).returncode == 0
    ):
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=180)
        return
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(600):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    subprocess.run(["bash", str(ROOT / "deploy" / "docker-engine.sh")], check=True, timeout=180)


def test_engine_restart_brings_everything_back_without_a_command(stack):
    if os.geteuid() != 0:
        pytest.fail("restarting the Docker Engine needs root (make test runs as root in CI)")
    stack.create("awake", "--idle", "never")
    stack.create("dozing", "--idle", "3s")
    stack.wait_status("dozing", "asleep", timeout=60)

    _restart_engine()
    stack.docker = docker.from_env()
    restarted = time.monotonic()
    stack.wait_status("awake", "running", timeout=90)
    session = stack.session()
    while True:
        try:
            if session.get(f"{stack.origin('awake')}/healthz", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() - restarted < 90, "gateway not back within 90 s"
        time.sleep(0.5)
    assert stack.status("dozing") == "asleep"
    assert session.get(f"{stack.origin('dozing')}/healthz", timeout=30).status_code == 200
    assert stack.login("awake", session)

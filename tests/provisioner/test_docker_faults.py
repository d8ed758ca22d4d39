"""Faults survived on the real engine, in a private installation (gateway, supervisor, facilities).

Each fault is made the way it happens: SIGKILL of a container's main process from the host (a
crash; Docker's restart policy then applies), a facility's cgroup memory limit lowered on the
running container until the kernel's OOM killer fires inside it, and routes.json overwritten in
place. What is checked is what an operator or a patient would see: a clear error or a normal
answer, nothing stored half, `integrity_check ok`, and everything at its desired state afterwards.
(kill -9 of a facility during writes and the engine restart have their tests elsewhere.)
"""

import json
import os
import signal
import threading
import time
from pathlib import Path

import docker
import pytest
import requests

import devsupport
from devsupport import eventually

pytestmark = pytest.mark.docker

MIB = 1024 * 1024
FACILITY_IMAGE = f"medcell-facility:{os.environ.get('MEDCELL_IMAGE_TAG', 'latest')}"
DB_CHECK = (
    "import json, sqlite3\n"
    "c = sqlite3.connect('/data/facility.db')\n"
    "tables = ('messages', 'attachments', 'attachment_chunks')\n"
    "print(json.dumps({'integrity': c.execute('PRAGMA integrity_check').fetchone()[0],\n"
    "  **{t: c.execute(f'SELECT count(*) FROM {t}').fetchone()[0] for t in tables}}))\n"
)


class Installation(devsupport.Installation):
    def __init__(self, home: Path):
        super().__init__(home, stem="mcfault", MEDCELL_IDLE_TIMEOUT="15m")
        self.docker = docker.from_env()

    def conversation(self, slug: str, session, auth, first: str) -> str:
        """A new conversation holding one message; its API path."""
        cid = session.post(f"{self.api(slug)}/conversations", json={}, headers=auth).json()["id"]
        path = f"{self.api(slug)}/conversations/{cid}"
        sent = session.post(f"{path}/messages", json={"body": first}, headers=auth, timeout=30)
        assert sent.status_code == 201, sent.text
        return path

    def status(self, slug: str) -> str:
        return {row["slug"]: row["status"] for row in self.medcell("facility", "list")}[slug]

    def wait_status(self, slug: str, wanted: str, timeout: float) -> None:
        seen = eventually(lambda: self.status(slug), lambda s: s == wanted, timeout)
        assert seen == wanted, f"{slug} still {seen}, not {wanted}"

    def inspect(self, name: str) -> dict:
        return self.docker.api.inspect_container(name)

    def database(self, slug: str) -> dict:
        """integrity_check and row counts, asked inside the running facility's container."""
        result = self.docker.containers.get(self.container(slug)).exec_run(
            ["python3", "-c", DB_CHECK]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def route(self, slug: str) -> str:
        routes = json.loads((self.home / "gateway" / "routes.json").read_text())
        return routes["facilities"][slug]["state"]

    def wait_answering(self, url: str, timeout: float = 90) -> None:
        def probe() -> int:
            try:
                return self.session().get(url, timeout=5).status_code
            except requests.RequestException:
                return 0

        assert eventually(probe, lambda status: status == 200, timeout) == 200, url


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    installation = Installation(tmp_path_factory.mktemp("faults") / "home")
    try:
        installation.medcell("up")
        yield installation
    finally:
        installation.remove()


def kill_main_process(stack: Installation, name: str) -> int:
    """SIGKILL the container's main process from the host, as a crash would; its restart count
    before. Docker's restart policy (unless-stopped) applies, unlike after `docker kill`."""
    attrs = stack.inspect(name)
    os.kill(attrs["State"]["Pid"], signal.SIGKILL)
    return attrs["RestartCount"]


def wait_restarted(stack: Installation, name: str, before: int, timeout: float = 60) -> dict:
    attrs = eventually(
        lambda: stack.inspect(name),
        lambda a: a["RestartCount"] > before and a["State"]["Running"],
        timeout,
    )
    assert attrs["RestartCount"] > before and attrs["State"]["Running"], attrs["State"]
    return attrs


def supervisor_events(stack: Installation) -> list[dict]:
    events = []
    for line in stack.logs(stack.supervisor).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            events.append(record)
    return events


def test_supervisor_killed_during_a_wake_the_request_is_answered(stack):
    slug = "waking"
    stack.create(slug, "--idle", "3s")
    session = stack.session()
    auth = stack.login(slug, session)
    path = stack.conversation(slug, session, auth, "Bitte Rückruf wegen Befund")
    stack.wait_status(slug, "asleep", timeout=60)
    container = stack.container(slug)
    since = time.time() - 1
    answer = {}

    def first_request():
        try:
            answer["response"] = session.get(f"{path}/messages", headers=auth, timeout=90)
        except requests.RequestException as e:
            answer["error"] = e

    client = threading.Thread(target=first_request)
    client.start()
    # The moment Docker starts the facility, the supervisor is in the middle of that wake: it
    # has yet to see the app answer on its socket and to route it as running.
    starts = stack.docker.events(
        since=int(since), filters={"container": container, "event": "start"}, decode=True
    )
    try:
        next(starts)
        restarts = kill_main_process(stack, stack.supervisor)
    finally:
        starts.close()
    client.join(timeout=120)

    response = answer.get("response")
    assert response is not None, answer.get("error")
    assert response.status_code == 200, response.text
    assert [m["body"] for m in response.json()["messages"]] == ["Bitte Rückruf wegen Befund"]
    wait_restarted(stack, stack.supervisor, restarts)
    # The wake was finished by the supervisor that came back, not by the one that was killed.
    events = supervisor_events(stack)
    last_start = max(i for i, e in enumerate(events) if e.get("event") == "started")
    woke = [i for i, e in enumerate(events) if e.get("event") == "woke" and e.get("slug") == slug]
    assert woke and min(woke) > last_start, "the kill did not come during the wake"

    # Nothing is left half-asleep: it falls asleep again as usual, state, route and container
    # agreeing, and the next request wakes it.
    stack.wait_status(slug, "asleep", timeout=60)
    assert stack.route(slug) == "asleep"
    assert stack.inspect(container)["State"]["Running"] is False
    again = stack.session().get(f"{path}/messages", headers=auth, timeout=60)
    assert again.status_code == 200
    assert stack.route(slug) == "running"


def test_facility_over_its_memory_limit_is_oom_killed_and_stores_nothing_half(stack):
    slug = "memory"
    stack.create(slug, "--idle", "never")
    session = stack.session()
    auth = stack.login(slug, session)  # before the limit: a password hash takes 64 MiB
    path = stack.conversation(slug, session, auth, "vor dem Speichermangel")
    container = stack.docker.containers.get(stack.container(slug))
    cgroup = MemoryCgroup(container.id)
    held = cgroup.held()
    kills_before = cgroup.oom_kills()
    started = stack.inspect(container.name)["State"]["StartedAt"]

    # Lowered on the running container, as a host short of memory would squeeze it: room for
    # what it holds now, not for a 20 MB upload held in memory. What it holds leaves out the file
    # pages in its cgroup (the page cache the kernel takes back before it kills anything: 12 MiB
    # of it once let the upload through).
    limit = held + 12 * MIB
    container.update(mem_limit=limit, memswap_limit=limit)
    try:
        content = b"%PDF-1.4\n" + os.urandom(20 * MIB)
        try:
            upload = session.post(
                f"{path}/attachments", headers=auth, timeout=90,
                files={"file": ("ct.pdf", content, "application/pdf")},
            )  # fmt: skip
            status, retry_after = upload.status_code, upload.headers.get("Retry-After")
        except requests.ConnectionError:
            status, retry_after = None, None
    finally:
        # A container the kernel killed whole is updated once Docker has started it again.
        assert eventually(lambda: restore_memory(container), bool, timeout=60)

    # One server process: the kernel kills it and with it the container, whose cgroup is gone
    # (or new) until Docker has restarted it; a process killed inside it leaves the count here.
    kills_after = cgroup.oom_kills() if cgroup.exists() else None
    assert status == 503 and retry_after, f"answered {status}, not 503 with Retry-After"

    stack.wait_answering(f"{stack.origin(slug)}/healthz")
    attrs = stack.inspect(container.name)
    if attrs["State"]["StartedAt"] != started:
        # The main process itself was killed: Docker restarted the container and says why.
        assert attrs["State"]["OOMKilled"] is True
    else:
        assert kills_after is not None and kills_after > kills_before, (
            "the kernel's OOM killer did not fire"
        )
    listed = session.get(f"{path}/messages", headers=auth, timeout=30).json()["messages"]
    assert [(m["body"], m["attachments"]) for m in listed] == [("vor dem Speichermangel", [])]
    assert stack.database(slug) == {
        "integrity": "ok", "messages": 1, "attachments": 0, "attachment_chunks": 0,
    }  # fmt: skip
    stack.wait_status(slug, "running", timeout=60)

    # With its memory back, the same upload is stored.
    retried = session.post(
        f"{path}/attachments", headers=auth, timeout=90,
        files={"file": ("ct.pdf", content, "application/pdf")},
    )  # fmt: skip
    assert retried.status_code == 201, retried.text
    download = session.get(f"{stack.api(slug)}/attachments/{retried.json()['id']}", headers=auth)
    assert download.content == content


def restore_memory(container) -> bool:
    try:
        container.update(mem_limit="256m", memswap_limit="256m")
    except docker.errors.APIError as e:
        # While Docker restarts a container the kernel killed, its process is stopped or
        # already gone ("cannot update a deleted process"): try again once it runs.
        if "stopped container" in str(e) or "deleted process" in str(e):
            return False
        raise
    return True


class MemoryCgroup:
    """The container's memory cgroup as the kernel shows it (v1 here, v2 elsewhere)."""

    def __init__(self, container_id: str):
        candidates = [
            Path(f"/sys/fs/cgroup/memory/docker/{container_id}"),  # v1, cgroupfs driver
            Path(f"/sys/fs/cgroup/docker/{container_id}"),  # v2, cgroupfs driver
            Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"),  # v2, systemd
        ]
        found = [path for path in candidates if path.is_dir()]
        if not found:
            pytest.fail(f"no memory cgroup found for container {container_id}")
        self.path = found[0]
        self.v1 = (self.path / "memory.oom_control").exists()

    def exists(self) -> bool:
        return (self.path / ("memory.oom_control" if self.v1 else "memory.events")).exists()

    def usage(self) -> int:
        name = "memory.usage_in_bytes" if self.v1 else "memory.current"
        return int((self.path / name).read_text())

    def held(self) -> int:
        """The memory the kernel cannot take back without killing: usage less file pages."""
        stat = dict(
            line.split(" ", 1) for line in (self.path / "memory.stat").read_text().splitlines()
        )
        prefix = "total_" if self.v1 else ""
        files = sum(int(stat[f"{prefix}{kind}_file"]) for kind in ("active", "inactive"))
        return self.usage() - files

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer has killed in it so far."""
        name = "memory.oom_control" if self.v1 else "memory.events"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        pytest.fail("this kernel does not count OOM kills per cgroup")


class SlowBody:
    """A known-length upload body that stops half-way until `release` is set."""

    def __init__(self, content: bytes, boundary: str):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="mrt.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        self.data = head + content + f"\r\n--{boundary}--\r\n".encode()
        self.half = threading.Event()
        self.release = threading.Event()

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        middle = len(self.data) // 2
        for start in range(0, len(self.data), 256 * 1024):
            if start >= middle and not self.half.is_set():
                self.half.set()
                self.release.wait(60)
            yield self.data[start : start + 256 * 1024]


def test_gateway_killed_mid_upload_stores_nothing_and_comes_back(stack):
    slug = "relay"
    stack.create(slug, "--idle", "never")
    session = stack.session()
    auth = stack.login(slug, session)
    path = stack.conversation(slug, session, auth, "vor dem Absturz")
    body = SlowBody(b"\x42" * (16 * MIB), "medcellkill")
    outcome = {}

    def upload():
        try:
            outcome["response"] = session.post(
                f"{path}/attachments", data=body, timeout=60,
                headers={**auth, "Content-Type": "multipart/form-data; boundary=medcellkill",
                         "Content-Length": str(len(body))},
            )  # fmt: skip
        except requests.RequestException as e:
            outcome["error"] = e

    client = threading.Thread(target=upload)
    client.start()
    assert body.half.wait(60), "the upload never got half-way"
    restarts = kill_main_process(stack, stack.gateway)
    body.release.set()
    client.join(timeout=90)

    # The client sees the connection fail, not an answer that could pass for success.
    assert "response" not in outcome, outcome["response"].status_code
    wait_restarted(stack, stack.gateway, restarts)
    stack.wait_answering(f"{stack.origin(slug)}/healthz")
    listed = session.get(f"{path}/messages", headers=auth, timeout=30).json()["messages"]
    assert [(m["body"], m["attachments"]) for m in listed] == [("vor dem Absturz", [])]
    assert stack.database(slug) == {
        "integrity": "ok", "messages": 1, "attachments": 0, "attachment_chunks": 0,
    }  # fmt: skip


def test_routes_file_overwritten_with_garbage_keeps_the_gateway_serving(stack):
    stack.create("steady", "--idle", "never")
    routes = stack.home / "gateway" / "routes.json"
    good = routes.read_bytes()
    with open(routes, "wb") as f:  # in place, as a crash half-way or an editor would leave it
        f.write(good[: len(good) // 2] + b"\xff\xfe")

    def unusable() -> int:
        return stack.logs(stack.gateway).count('"routes_unusable"')

    assert eventually(unusable, lambda n: n >= 1, timeout=15) >= 1
    assert stack.inspect(stack.gateway)["State"]["Running"] is True
    health = stack.session().get(f"{stack.origin('steady')}/healthz", timeout=30)
    assert health.status_code == 200

    # The next change by the CLI writes a whole table again, every facility still in it.
    stack.create("newcomer", "--idle", "never")
    for slug in ("steady", "newcomer"):
        response = stack.session().get(f"{stack.origin(slug)}/healthz", timeout=30)
        assert response.status_code == 200, slug
    table = json.loads(routes.read_text())["facilities"]
    assert set(stack.facilities) <= set(table)

"""The facility image on a real size-limited Docker volume (local driver, tmpfs of 8 MiB).

The container runs as in production (uid 10001, read-only root, no network, its socket in a bind
mount); the test fills its data volume through the API, then fills the rest from inside as
another writer would, and checks that nothing acknowledged is lost and deletion still works.
"""

import json
import os
import secrets
import time
import uuid

import pytest

from devsupport.docker_objects import remove_installation
from devsupport.unix_http import UnixHTTPConnection
from provisioner.host.config import Config

pytestmark = pytest.mark.docker

FILE = 256 * 1024


def call(sock, method: str, target: str, body=None, headers=None) -> tuple[int, dict | bytes]:
    conn = UnixHTTPConnection(sock, timeout=30)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        hdrs = {"Content-Type": "application/json", **(headers or {})} if body is not None else {}
        conn.request(method, target, body=data, headers={**hdrs, **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if "json" in kind and raw else raw
    finally:
        conn.close()


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def full_volume_facility(docker_client, tmp_path):
    """A facility container whose data volume is an 8 MiB tmpfs; removed afterwards."""
    prefix = f"mctest{secrets.token_hex(3)}"
    labels = {"medcell.instance": prefix, "medcell.facility": "full"}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chmod(run_dir, 0o777)
    data = docker_client.volumes.create(
        f"{prefix}-full-data",
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=8m,uid=10001,gid=10001"},
        labels=labels,
    )
    keys = docker_client.volumes.create(f"{prefix}-full-keys", labels=labels)
    try:
        container = docker_client.containers.run(
            Config.from_env().facility_image,
            name=f"{prefix}-full",
            detach=True,
            user="10001:10001",
            labels=labels,
            environment={
                "MEDCELL_FACILITY": "full",
                "MEDCELL_BIND": "unix:/run/medcell/app.sock",
                "MEDCELL_SPACE_RESERVE": "1MiB",
            },
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": ""},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            volumes={
                data.name: {"bind": "/data", "mode": "rw"},
                keys.name: {"bind": "/keys", "mode": "rw"},
                str(run_dir): {"bind": "/run/medcell", "mode": "rw"},
            },
        )
        sock = run_dir / "app.sock"
        for _ in range(300):
            try:
                if call(sock, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"facility did not answer: {container.logs()[-2000:]!r}")
        yield container, sock
    finally:
        remove_installation(docker_client, prefix)


def manage(container, *command: str) -> dict:
    code, out = container.exec_run(["python", "-m", "services.facility", *command])
    assert code == 0, out
    return json.loads(out)


def test_a_facility_on_a_full_docker_volume_loses_nothing_and_still_deletes(full_volume_facility):
    container, sock = full_volume_facility
    password = manage(container, "create-admin")["password"]
    status, body = call(sock, "POST", "/api/v1/login", {"username": "admin", "password": password})
    assert status == 200
    auth = {"Authorization": f"Bearer {body['token']}"}
    convs = [call(sock, "POST", "/api/v1/conversations", {}, auth)[1]["id"] for _ in "ab"]
    stored = 0
    for i in range(100):
        payload, kind = multipart(b"%PDF-" + os.urandom(FILE - 5))
        status, body = call(
            sock,
            "POST",
            f"/api/v1/conversations/{convs[i % 2]}/attachments",
            payload,
            {**auth, "Content-Type": kind},
        )
        if status != 201:
            break
        stored += 1
    assert status == 507 and body["error"]["code"] == "storage_full", body
    assert stored >= 10
    # Another writer takes the rest of the volume.
    code, out = container.exec_run(
        [
            "python",
            "-c",
            "import os\nfd = os.open('/data/filler', os.O_WRONLY | os.O_CREAT, 0o600)\n"
            "for size in (65536, 4096, 1):\n"
            "    try:\n"
            "        while True: os.write(fd, bytes(size))\n"
            "    except OSError: pass\n"
            "st = os.statvfs('/data'); print(st.f_bavail * st.f_frsize)",
        ]
    )
    assert code == 0 and int(out) < 64 * 1024, out
    # Reading, logging in and deleting work at 100 %.
    status, body = call(sock, "POST", "/api/v1/login", {"username": "admin", "password": password})
    assert status == 200
    status, listed = call(sock, "GET", f"/api/v1/conversations/{convs[1]}/messages", None, auth)
    assert status == 200 and len(listed["messages"]) == stored // 2
    status, _ = call(sock, "DELETE", f"/api/v1/conversations/{convs[0]}", None, auth)
    assert status in (200, 204)
    assert call(sock, "GET", f"/api/v1/conversations/{convs[0]}", None, auth)[0] == 404
    usage = manage(container, "usage")
    assert usage["largest_conversations"][0]["attachments"] == len(listed["messages"])
    assert len(usage["largest_conversations"]) == 1
    code, out = container.exec_run(
        [
            "python",
            "-c",
            "import sqlite3, os\nc = sqlite3.connect('/data/facility.db')\n"
            "print(c.execute('PRAGMA integrity_check').fetchone()[0], "
            "os.path.getsize('/data/facility.db-wal'))",
        ]
    )
    assert code == 0 and out.split() == [b"ok", b"0"], out

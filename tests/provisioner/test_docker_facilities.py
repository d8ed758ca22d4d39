"""Facilities on the real Docker Engine: isolation, hardening, keys, restarts, deletion."""

import base64
import json
import subprocess
import sys
import time

import pytest

from provisioner.host.seccomp import facility_profile
from tests.provisioner.facility_api import call, login

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def pair(live):
    """Two facilities, A and B, each with its admin login."""
    a = live.create("a", name="Praxis A", retention="1d")
    b = live.create("b", name="Praxis B")
    return {"a": a, "b": b}


def container_name(live, slug: str) -> str:
    return live.config.facility(slug).container


def inspect(docker_client, name: str) -> dict:
    return docker_client.api.inspect_container(name)


def wait_running_again(docker_client, name: str, restarts: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attrs = inspect(docker_client, name)
        if attrs["RestartCount"] > restarts and attrs["State"]["Running"]:
            probe = docker_client.containers.get(name).exec_run(
                [
                    "python",
                    "-c",
                    "import socket; s = socket.socket(socket.AF_UNIX); "
                    "s.connect('/run/medcell/app.sock')",
                ]
            )
            if probe.exit_code == 0:
                return attrs
        time.sleep(0.5)
    pytest.fail(f"{name} did not come back within {timeout}s")


def test_list_shows_both_running(live, pair):
    assert [(f["slug"], f["status"]) for f in live.list()] == [("a", "running"), ("b", "running")]


def test_a_has_no_network_and_cannot_reach_b(live, pair, docker_client):
    a, b = container_name(live, "a"), container_name(live, "b")
    assert inspect(docker_client, b)["NetworkSettings"]["Networks"].keys() <= {"none"}
    probe = (
        "import os, socket, sys\n"
        "print(sorted(os.listdir('/sys/class/net')))\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], 8000), timeout=3).close()\n"
        "    print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', type(e).__name__)\n"
    )
    for target in (b, "172.17.0.1", "10.213.0.2"):
        result = docker_client.containers.get(a).exec_run(["python", "-c", probe, target])
        interfaces, outcome = result.output.decode().strip().splitlines()
        assert interfaces == "['lo']"  # loopback only: no route to anything
        assert outcome.startswith("refused"), (target, outcome)


def test_facility_container_is_hardened(live, pair, docker_client):
    attrs = inspect(docker_client, container_name(live, "a"))
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "10001:10001"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges:true", f"seccomp={facility_profile()}"]
    assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Privileged"] is False
    assert host["NetworkMode"] == "none"  # no network at all: only its socket
    assert host["PidMode"] == "" and host["IpcMode"] in ("private", "") and host["UTSMode"] == ""
    assert not host["PortBindings"] and not attrs["NetworkSettings"]["Ports"]
    assert "/tmp" in host["Tmpfs"]
    assert attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]  # probed over the socket
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert set(mounts) == {"/data", "/keys", "/run/medcell"}
    assert mounts["/data"]["Type"] == mounts["/keys"]["Type"] == "volume"
    assert mounts["/run/medcell"]["Type"] == "bind" and mounts["/run/medcell"]["RW"] is True
    assert mounts["/run/medcell"]["Source"] == str(live.config.facility_socket_dir("a"))
    assert live.config.facility_socket("a").is_socket()
    assert "docker.sock" not in json.dumps(attrs)
    assert docker_client.networks.list(names=[f"{live.config.prefix}-a"]) == []  # none at all


SYSTEM_CALLS = """
import ctypes, errno, json, os, socket, threading

libc = ctypes.CDLL(None, use_errno=True)


def outcome(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def c(function, *args):
    def call():
        if function(*args) == -1:
            raise OSError(ctypes.get_errno(), "")
    return call


thread = threading.Thread(target=lambda: None)
print(json.dumps({
    "unix socket": outcome(lambda: socket.socket(socket.AF_UNIX).close()),
    "thread": outcome(lambda: (thread.start(), thread.join())),
    "inet socket": outcome(lambda: socket.socket(socket.AF_INET).close()),
    "netlink socket": outcome(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()),
    "getpriority": outcome(lambda: os.getpriority(os.PRIO_PROCESS, 0)),
    "unshare": outcome(c(libc.unshare, 0)),
    "mount": outcome(c(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)),
    "ptrace": outcome(c(libc.ptrace, 0, 0, None, None)),
    "personality": outcome(c(libc.personality, 0xFFFFFFFF)),
}))
"""


def test_the_facility_may_make_only_the_system_calls_it_needs(live, pair, docker_client):
    """Its own seccomp profile (provisioner/host/seccomp.py), also for what runs beside it."""
    result = docker_client.containers.get(container_name(live, "a")).exec_run(
        ["python", "-c", SYSTEM_CALLS]
    )
    assert result.exit_code == 0, result.output
    refused = ["inet socket", "netlink socket", "getpriority", "unshare", "mount", "ptrace"]
    assert json.loads(result.output) == {
        "unix socket": "ok",
        "thread": "ok",
        **dict.fromkeys(refused, "EPERM"),
        "personality": "EPERM",
    }
    # and the facility under it serves
    assert call(docker_client, container_name(live, "a"), "GET", "/healthz")[0] == 200


def test_no_key_material_in_inspect_env_or_labels(live, pair, docker_client):
    name = container_name(live, "a")
    dump = (
        "import os, json\n"
        "print(json.dumps({p: open(os.path.join(r, p), 'rb').read().hex()"
        " for r, _, fs in os.walk('/keys') for p in fs}))"
    )
    result = docker_client.containers.get(name).exec_run(["python", "-c", dump])
    assert result.exit_code == 0, result.output
    files = [bytes.fromhex(v) for v in json.loads(result.output.decode()).values()]
    keys = [k for k in files if len(k) >= 16]  # e.g. empty lock files hold nothing to leak
    assert keys, "the facility made no key files in /keys"
    visible = json.dumps(inspect(docker_client, name))
    visible += json.dumps(docker_client.volumes.get(live.config.facility("a").data_volume).attrs)
    for key in keys:
        for chunk in (key[i : i + 16] for i in range(0, max(len(key) - 15, 1), 16)):
            for form in (chunk.hex(), base64.b64encode(chunk).decode()[:20]):
                assert form not in visible
    env = inspect(docker_client, name)["Config"]["Env"]
    assert not [
        e for e in env if "KEY=" in e.upper() or "SECRET" in e.upper() or "PASS" in e.upper()
    ]


def test_admin_password_works_and_is_not_in_docker_metadata(live, pair, docker_client):
    name = container_name(live, "a")
    assert login(docker_client, name, "admin", pair["a"]["admin_password"])
    assert pair["a"]["admin_password"] not in json.dumps(inspect(docker_client, name))


def test_tokens_of_a_are_refused_by_b(live, pair, docker_client):
    a, b = container_name(live, "a"), container_name(live, "b")
    staff = login(docker_client, a, "admin", pair["a"]["admin_password"])
    status, conversation = call(
        docker_client, a, "POST", "/api/v1/conversations", staff, {"title": "x"}
    )
    assert status == 201
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    assert call(docker_client, a, "GET", path, conversation["patient_token"])[0] == 200
    assert call(docker_client, b, "GET", "/api/v1/conversations", staff)[0] == 401
    assert call(docker_client, b, "GET", path, conversation["patient_token"])[0] in (401, 404)
    assert call(docker_client, b, "POST", path, conversation["patient_token"], {"body": "x"})[
        0
    ] in (
        401,
        404,
    )


def post_and_read(docker_client, name: str, password: str, text: str) -> tuple[str, str]:
    staff = login(docker_client, name, "admin", password)
    status, conversation = call(docker_client, name, "POST", "/api/v1/conversations", staff, {})
    assert status == 201
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    assert call(docker_client, name, "POST", path, staff, {"body": text})[0] == 201
    return staff, path


def bodies(docker_client, name: str, token: str, path: str) -> list[str]:
    status, data = call(docker_client, name, "GET", path, token)
    assert status == 200
    return [m["body"] for m in data["messages"]]


def test_stop_and_start_keep_messages(live, pair, docker_client):
    name = container_name(live, "a")
    _, path = post_and_read(docker_client, name, pair["a"]["admin_password"], "kept over restart")
    assert live.stop("a")["status"] == "stopped"
    assert {f["slug"]: f["status"] for f in live.list()}["a"] == "stopped"
    assert live.start("a")["status"] == "running"
    staff = login(docker_client, name, "admin", pair["a"]["admin_password"])
    assert "kept over restart" in bodies(docker_client, name, staff, path)


def test_start_recreates_a_container_removed_by_hand(live, pair, docker_client):
    name = container_name(live, "b")
    _, path = post_and_read(docker_client, name, pair["b"]["admin_password"], "survives rm -f")
    docker_client.containers.get(name).remove(force=True)
    assert {f["slug"]: f["status"] for f in live.list()}["b"] == "stopped"
    assert live.start("b")["status"] == "running"
    staff = login(docker_client, name, "admin", pair["b"]["admin_password"])
    assert "survives rm -f" in bodies(docker_client, name, staff, path)
    assert inspect(docker_client, name)["HostConfig"]["ReadonlyRootfs"] is True


def test_killed_facility_comes_back_with_its_data(live, pair, docker_client):
    name = container_name(live, "a")
    _, path = post_and_read(docker_client, name, pair["a"]["admin_password"], "kill -9 proof")
    before = inspect(docker_client, name)["RestartCount"]
    # SIGKILL the container's main process from the host, as a crash or the OOM killer would.
    pid = inspect(docker_client, name)["State"]["Pid"]
    subprocess.run(["kill", "-9", str(pid)], check=True)
    wait_running_again(docker_client, name, before)
    staff = login(docker_client, name, "admin", pair["a"]["admin_password"])
    assert "kill -9 proof" in bodies(docker_client, name, staff, path)


def test_docker_kill_counts_as_an_operator_stop_and_start_brings_data_back(
    live, pair, docker_client
):
    # Docker never restarts a container that `docker kill` stopped, whatever the policy.
    name = container_name(live, "b")
    _, path = post_and_read(docker_client, name, pair["b"]["admin_password"], "after docker kill")
    docker_client.containers.get(name).kill(signal="SIGKILL")
    deadline = time.monotonic() + 10
    # It should run but does not: unhealthy (the supervisor, when it runs, starts it again).
    while {f["slug"]: f["status"] for f in live.list()}["b"] != "unhealthy":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert live.start("b")["status"] == "running"
    staff = login(docker_client, name, "admin", pair["b"]["admin_password"])
    assert "after docker kill" in bodies(docker_client, name, staff, path)


def test_rotate_key_keeps_old_messages_readable(live, pair, docker_client):
    name = container_name(live, "b")
    staff, path = post_and_read(docker_client, name, pair["b"]["admin_password"], "before rotation")
    result = live.rotate_key("b")
    assert result["version"] >= 2
    assert "before rotation" in bodies(docker_client, name, staff, path)


def test_cli_runs_as_a_real_process(installation, pair):
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "facility", "list", "--json"],
        env=installation,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert {f["slug"] for f in json.loads(result.stdout)} == {"a", "b"}


def test_two_concurrent_creates_of_one_slug_one_wins(live, installation, docker_client):
    command = [sys.executable, "-m", "provisioner", "facility", "create", "twice", "--json"]
    runs = [
        subprocess.Popen(command, env=installation, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read().decode()) for p in runs]
    assert sorted(code for code, _, _ in results) == [0, 1]
    (loser,) = [err for code, _, err in results if code]
    # The second waits for the first, then finds its facility there.
    assert loser.splitlines()[-1] == "Error: facility twice already exists"
    assert [f["status"] for f in live.list() if f["slug"] == "twice"] == ["running"]
    live.delete("twice")


def test_delete_leaves_no_object_and_no_key(live, installation, docker_client):
    live.create("gone")
    names = live.config.facility("gone")
    assert live.delete("gone")["keys_destroyed"] >= 1
    labelled = {"label": ["medcell.facility=gone", f"medcell.instance={live.config.prefix}"]}
    assert docker_client.containers.list(all=True, filters=labelled) == []
    assert docker_client.volumes.list(filters=labelled) == []
    assert docker_client.networks.list(filters=labelled) == []
    for volume in (names.data_volume, names.keys_volume):
        assert volume not in [v.name for v in docker_client.volumes.list()]
    home = live.config.home
    mentions = [p for p in home.rglob("*") if p.is_file() and "gone" in p.read_text()]
    assert [p.name for p in mentions] == ["deletions.log"]


def test_delete_of_a_stopped_facility_shreds_offline(live, docker_client):
    live.create("off")
    live.stop("off")
    assert live.delete("off")["keys_destroyed"] >= 1
    labelled = {"label": ["medcell.facility=off", f"medcell.instance={live.config.prefix}"]}
    assert docker_client.containers.list(all=True, filters=labelled) == []
    assert docker_client.volumes.list(filters=labelled) == []


def test_a_command_that_prints_without_end_in_a_facility_is_cut_off(live, pair):
    """What runs in a facility's container may be hostile: its output is read only so far."""
    from provisioner.host.docker_backend import OUTPUT_BYTES
    from provisioner.host.errors import OutputRefused

    flood = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    with pytest.raises(OutputRefused, match=f"more than {OUTPUT_BYTES} bytes"):
        live.backend.exec(container_name(live, "a"), ["python", "-c", flood])
    # An ordinary management command still answers afterwards.
    assert live.show("a")["status"] == "running"

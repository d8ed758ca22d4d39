"""Talking HTTP to a facility over a real unix socket, as the CLI and the supervisor do."""

import dataclasses
import http.server
import json
import logging
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from provisioner.host import facility_http
from provisioner.host.config import FACILITY_UID, Config
from provisioner.host.errors import FacilityUnreachable, HealthTimeout, SweepTimeout

ROOT = Path(__file__).resolve().parents[2]
STATUS = {"inflight": 1, "requests": 5, "idle_seconds": 0.0, "busy": False, "next_deadline": None}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(path, answers: dict[str, tuple[int, bytes]]):
    """A tiny HTTP server on a unix socket answering fixed bodies by path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code, body = answers.get(self.path, (404, b"{}"))
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def address_string(self):
            return "unix"

        def log_message(self, *args):
            pass

    path.parent.mkdir(parents=True, exist_ok=True)
    # Bind through the directory's fd so that long test paths fit in sun_path, too.
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        server = _Server(f"/proc/self/fd/{fd}/{path.name}", Handler)
    finally:
        os.close(fd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def facility(config):
    answers = {"/healthz": (200, b'{"status": "ok"}'), "/_medcell/status": (200, b"")}
    answers["/_medcell/status"] = (200, json.dumps(STATUS).encode())
    server = serve(config.facility_socket("alpha"), answers)
    yield answers
    server.shutdown()
    server.server_close()


def test_healthy_and_status_over_the_socket(config, facility):
    assert facility_http.healthy(config, "alpha")
    assert facility_http.status(config, "alpha") == facility_http.FacilityStatus(
        inflight=1, requests=5, idle_seconds=0.0, busy=False, next_deadline=None
    )


def test_no_socket_is_unhealthy_and_unreachable(config):
    assert not facility_http.healthy(config, "ghost")
    with pytest.raises(FacilityUnreachable):
        facility_http.status(config, "ghost")


def test_bad_status_answers_are_unreachable(config, facility):
    facility["/_medcell/status"] = (404, b"{}")
    with pytest.raises(FacilityUnreachable, match="HTTP 404"):
        facility_http.status(config, "alpha")
    facility["/_medcell/status"] = (200, b'{"inflight": "many"}')
    with pytest.raises(FacilityUnreachable, match="unreadable"):
        facility_http.status(config, "alpha")


def test_a_long_home_path_still_reaches_the_socket(tmp_path):
    config = Config(home=tmp_path / ("h" * 90), facility_uid=os.getuid())
    assert len(str(config.facility_socket("alpha"))) > 108
    server = serve(config.facility_socket("alpha"), {"/healthz": (200, b"{}")})
    try:
        assert facility_http.healthy(config, "alpha")
    finally:
        server.shutdown()
        server.server_close()


def test_wait_healthy_returns_once_it_answers(config, facility):
    facility_http.wait_healthy(config, "alpha", timeout=5)


def test_wait_healthy_times_out(config):
    now = [0.0]
    with pytest.raises(HealthTimeout, match="did not answer"):
        facility_http.wait_healthy(
            config, "ghost", timeout=1, clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, now[0] + s),
        )  # fmt: skip


def test_wait_healthy_gives_up_when_alive_raises(config):
    def dead():
        raise HealthTimeout("container exited")

    with pytest.raises(HealthTimeout, match="exited"):
        facility_http.wait_healthy(config, "ghost", timeout=60, alive=dead)


class Recording(dict):
    """Fixed answers by path that remember which paths were asked."""

    def __init__(self, answers: dict):
        super().__init__(answers)
        self.asked: list[str] = []

    def get(self, path, default=None):
        self.asked.append(path)
        return super().get(path, default)


def test_a_waking_facility_is_asked_its_status_alone(config):
    """Each request costs a starting facility CPU: the wait asks the status, not /healthz too."""
    answers = Recording({"/_medcell/status": (200, json.dumps(STATUS).encode())})
    server = serve(config.facility_socket("alpha"), answers)
    try:
        answered = facility_http.wait_ready(config, "alpha", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert answered >= 0
    assert answers.asked == ["/_medcell/status"]


def test_waiting_for_a_facility_that_never_answers_is_a_health_timeout(config):
    with pytest.raises(HealthTimeout, match="did not answer") as raised:
        facility_http.wait_ready(config, "ghost", timeout=0.2)
    assert not isinstance(raised.value, SweepTimeout)


def test_a_facility_that_answers_but_never_confirms_its_sweep_is_a_sweep_timeout(config):
    busy = {**STATUS, "busy": True}
    server = serve(
        config.facility_socket("alpha"), {"/_medcell/status": (200, json.dumps(busy).encode())}
    )
    try:
        with pytest.raises(SweepTimeout, match="overdue deletions"):
            facility_http.wait_ready(config, "alpha", timeout=0.3)
    finally:
        server.shutdown()
        server.server_close()


# A facility that lies: every number is read strictly, a bad answer is a failed probe.


@pytest.mark.parametrize(
    "field, raw",
    [
        ("next_deadline", "NaN"),
        ("next_deadline", "Infinity"),
        ("next_deadline", "-Infinity"),
        ("next_deadline", "1e999"),
        ("next_deadline", '"1800000000"'),
        ("next_deadline", "true"),
        ("idle_seconds", "NaN"),
        ("idle_seconds", "-1"),
        ("inflight", "Infinity"),
        ("inflight", "true"),
        ("inflight", "-1"),
        ("inflight", "1.5"),
        ("requests", "1" + "0" * 5000),
        ("busy", "1"),
        ("outbox", '"3"'),
    ],
)
def test_a_status_with_a_bad_number_is_a_failed_probe(config, facility, field, raw):
    fields = {**STATUS, "outbox": 0}
    text = json.dumps({**fields, field: "@"}).replace('"@"', raw)
    facility["/_medcell/status"] = (200, text.encode())
    with pytest.raises(FacilityUnreachable, match="unreadable"):
        facility_http.status(config, "alpha")


def test_a_reported_deadline_is_clamped_between_now_and_the_horizon(config, facility):
    now = 1_800_000_000.0
    for reported, seen in [
        (now - 86400, now),  # overdue: due now
        (now + 600, now + 600),
        (now + 10**12, now + facility_http.DEADLINE_HORIZON),  # never out of sight for long
    ]:
        facility["/_medcell/status"] = (
            200,
            json.dumps({**STATUS, "next_deadline": reported}).encode(),
        )
        assert facility_http.status(config, "alpha", now=now).next_deadline == seen
    assert facility_http.DEADLINE_HORIZON == 8 * 86400  # 7 days' retention and a rotation


# A facility that stalls or floods: one deadline for the whole exchange, a cap on the bytes.


class _RawServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def raw_facility(config, answer, path=None):
    """A facility process that reads the request and then writes what `answer(sock)` likes."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(65536)
            try:
                answer(self.request)
            except OSError:
                pass  # the supervisor hung up

    path = path or config.facility_socket("alpha")
    path.parent.mkdir(parents=True, exist_ok=True)
    server = _RawServer(str(path), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def in_thread(call):
    """Run `call` in a thread: (thread, outcome list) — a hung call must not hang the test."""
    outcome = []

    def run():
        try:
            outcome.append(call())
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_facility_trickling_one_byte_every_1_5_s_is_cut_off_at_the_deadline(config):
    sent, stop = [], threading.Event()

    def trickle(sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            sock.sendall(b"{")  # each byte well inside any per-read timeout
            sent.append(1)
            stop.wait(1.5)

    server = raw_facility(config, trickle)
    try:
        thread, outcome = in_thread(
            lambda: facility_http.request(config, "alpha", "/_medcell/outbox", timeout=2.0)
        )
        thread.join(30)
        assert not thread.is_alive(), "the exchange outlived its deadline"
        assert isinstance(outcome[0], TimeoutError)
        assert len(sent) <= 3  # what 2 s of trickling gets through, not 30 s worth
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("announced", [True, False], ids=["content-length-8GiB", "until-close"])
def test_an_endless_answer_is_cut_off_at_the_cap_without_memory_growing(config, announced):
    sent = [0]
    chunk = b"x" * 65536
    safety = 512 * 1024 * 1024  # the fake stops here (a multi-GB body, as far as anyone reads)

    def flood(sock):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if announced:
            head += b"Content-Length: 8589934592\r\n"
        sock.sendall(head + b"\r\n")
        while sent[0] < safety:
            sock.sendall(chunk)
            sent[0] += len(chunk)

    server = raw_facility(config, flood)
    tracemalloc.start()
    try:
        thread, outcome = in_thread(
            lambda: facility_http.request(config, "alpha", "/_medcell/outbox", timeout=30.0)
        )
        thread.join(60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.shutdown()
        server.server_close()
    assert not thread.is_alive()
    assert isinstance(outcome[0], facility_http.AnswerTooLarge)
    cap = facility_http.ANSWER_LIMIT
    assert peak < 2 * cap  # nothing beyond the cap was ever held
    assert sent[0] < cap + 8 * 1024 * 1024  # the facility was hung up on, not read to the end


def test_a_status_answer_has_a_tight_cap(config, facility):
    padding = " " * facility_http.STATUS_LIMIT
    facility["/_medcell/status"] = (200, (json.dumps(STATUS) + padding).encode())
    with pytest.raises(FacilityUnreachable, match="AnswerTooLarge"):
        facility_http.status(config, "alpha")


# The facility owns its socket directory: what it plants there is not followed.


@pytest.fixture
def decoy(config):
    """Another socket on the host (another facility's, the Docker socket): it must see nothing."""
    connections = []
    path = config.home / "decoy.sock"

    def answer(sock):
        connections.append(1)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    server = raw_facility(config, answer, path=path)
    yield path, connections
    server.shutdown()
    server.server_close()


def refusals(caplog) -> list[dict]:
    return [r.fields for r in caplog.records if r.getMessage() == "socket_refused"]


def test_a_symlink_planted_as_the_socket_is_not_followed(config, decoy, caplog):
    path, connections = decoy
    config.facility_socket_dir("alpha").mkdir(parents=True)
    config.facility_socket("alpha").symlink_to(path)
    with caplog.at_level(logging.WARNING, logger="medcell"):
        with pytest.raises(FacilityUnreachable):
            facility_http.status(config, "alpha")
        assert not facility_http.healthy(config, "alpha")
    assert connections == []
    assert refusals(caplog)[0] == {"event": "socket_refused", "slug": "alpha", "reason": "symlink"}
    assert str(path) not in caplog.text and "decoy" not in caplog.text


def test_a_regular_file_planted_as_the_socket_is_refused_without_reading_it(config, caplog):
    config.facility_socket_dir("alpha").mkdir(parents=True)
    config.facility_socket("alpha").write_text("GET /secret-patient-data")
    with caplog.at_level(logging.WARNING, logger="medcell"):
        with pytest.raises(FacilityUnreachable):
            facility_http.status(config, "alpha")
    assert refusals(caplog)[0]["reason"] == "not_a_socket"
    assert "secret" not in caplog.text


def test_a_socket_not_owned_by_the_facility_user_is_refused(config, facility, caplog):
    # The socket belongs to this test's user; say the facility runs as someone else.
    other = dataclasses.replace(config, facility_uid=os.getuid() + 1)
    with caplog.at_level(logging.WARNING, logger="medcell"):
        with pytest.raises(FacilityUnreachable):
            facility_http.status(other, "alpha")
    assert refusals(caplog)[0]["reason"] == "not_facility_user"
    assert facility_http.status(config, "alpha").requests == 5  # its own user: fine


FACILITY_PROCESS = """
import http.server, json, os, socketserver, sys
os.umask(0)  # like the facility's gunicorn: the gateway and supervisor may connect
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"inflight": 0, "requests": 7, "idle_seconds": 0.0, "busy": False,
                           "next_deadline": None}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
socketserver.UnixStreamServer(sys.argv[1], Handler).serve_forever()
"""

SUPERVISOR_PROCESS = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from provisioner.host import facility_http
from provisioner.host.config import Config
print(facility_http.status(Config(home=Path(sys.argv[1])), "alpha").requests)
"""


@pytest.mark.process
def test_the_facilitys_own_socket_in_its_0711_directory_is_reached_as_in_production():
    # As deployed: the facility runs as uid 10001 in its own directory (0711), the supervisor
    # as another user without capabilities. Needs root here to run both as other users.
    if os.geteuid() != 0:
        pytest.skip("needs root to run the facility and the supervisor as their own users")
    root = Path(tempfile.mkdtemp(prefix="mc-uid-", dir="/tmp"))  # others may search it
    home = root / "home"
    directory = Config(home=home).facility_socket_dir("alpha")
    directory.mkdir(parents=True)
    for path in (directory.parent, directory.parent.parent, home, root):
        path.chmod(0o755)
    os.chown(directory, FACILITY_UID, FACILITY_UID)
    directory.chmod(0o711)
    socket_path = directory / "app.sock"
    # The supervisor's user reads the code from a copy anyone may read (the checkout may not be).
    code = root / "code"
    for package in ("provisioner", "medcell_common"):
        shutil.copytree(
            ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for path in [code, *code.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    facility = subprocess.Popen(
        ["/usr/bin/python3", "-c", FACILITY_PROCESS, str(socket_path)],
        user=FACILITY_UID,
        group=FACILITY_UID,
    )
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert time.monotonic() < deadline and facility.poll() is None
            time.sleep(0.01)
        supervisor = subprocess.run(
            ["/usr/bin/python3", "-c", SUPERVISOR_PROCESS, str(home), str(code)],
            user=65534,
            group=65534,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        facility.kill()
        facility.wait()
        shutil.rmtree(root, ignore_errors=True)
    assert supervisor.stdout.strip() == "7", supervisor.stderr[-500:]

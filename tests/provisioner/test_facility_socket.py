"""Talking HTTP to a facility over a real unix socket, as the CLI and the supervisor do."""

import http.server
import json
import os
import socketserver
import threading

import pytest

from provisioner import facility_socket
from provisioner.config import Config
from provisioner.errors import FacilityUnreachable, HealthTimeout

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
    assert facility_socket.healthy(config, "alpha")
    assert facility_socket.status(config, "alpha") == facility_socket.FacilityStatus(
        inflight=1, requests=5, idle_seconds=0.0, busy=False, next_deadline=None
    )


def test_no_socket_is_unhealthy_and_unreachable(config):
    assert not facility_socket.healthy(config, "ghost")
    with pytest.raises(FacilityUnreachable):
        facility_socket.status(config, "ghost")


def test_bad_status_answers_are_unreachable(config, facility):
    facility["/_medcell/status"] = (404, b"{}")
    with pytest.raises(FacilityUnreachable, match="HTTP 404"):
        facility_socket.status(config, "alpha")
    facility["/_medcell/status"] = (200, b'{"inflight": "many"}')
    with pytest.raises(FacilityUnreachable, match="unreadable"):
        facility_socket.status(config, "alpha")


def test_a_long_home_path_still_reaches_the_socket(tmp_path):
    config = Config(home=tmp_path / ("h" * 90))
    assert len(str(config.facility_socket("alpha"))) > 108
    server = serve(config.facility_socket("alpha"), {"/healthz": (200, b"{}")})
    try:
        assert facility_socket.healthy(config, "alpha")
    finally:
        server.shutdown()
        server.server_close()


def test_wait_healthy_returns_once_it_answers(config, facility):
    facility_socket.wait_healthy(config, "alpha", timeout=5)


def test_wait_healthy_times_out(config):
    now = [0.0]
    with pytest.raises(HealthTimeout, match="did not answer"):
        facility_socket.wait_healthy(
            config, "ghost", timeout=1, clock=lambda: now[0],
            sleep=lambda s: now.__setitem__(0, now[0] + s),
        )  # fmt: skip


def test_wait_healthy_gives_up_when_alive_raises(config):
    def dead():
        raise HealthTimeout("container exited")

    with pytest.raises(HealthTimeout, match="exited"):
        facility_socket.wait_healthy(config, "ghost", timeout=60, alive=dead)

"""The activator counts a request's wake deadline from when nginx received it (X-Medcell-Received),
checked strictly: the real activator app, with a fake supervisor and a facility stand-in on their
real unix sockets."""

import io
import json
import time

import pytest

from gateway.activator import Activator, received_age
from gateway.settings import DEFAULTS, facility_socket, supervisor_socket

from .upstream import FakeSupervisor, UnixServer


@pytest.fixture
def activator(tmp_path):
    settings = {**DEFAULTS, "RUN_DIR": str(tmp_path), "READ_TIMEOUT": 60.0, "WAKE_TIMEOUT": 55.0}
    supervisor = FakeSupervisor(supervisor_socket(settings), delay=0).start()
    supervisor.answer("sleepy", 200)
    facility = UnixServer("sleepy", facility_socket(settings, "sleepy")).start()
    app = Activator(settings)
    app.supervisor, app.facility = supervisor, facility
    yield app
    supervisor.stop()
    facility.stop()


def ask(app: Activator, received: str | None) -> tuple[str, dict, bytes]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(b""),
        "HTTP_X_MEDCELL_SLUG": "sleepy",
        "HTTP_X_FORWARDED_FOR": "192.0.2.7",
    }
    if received is not None:
        environ["HTTP_X_MEDCELL_RECEIVED"] = received
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return answer["status"], answer["headers"], data


def test_a_request_nginx_received_before_its_deadline_gets_503_without_a_wake(activator):
    status, headers, body = ask(activator, f"{time.time() - 56:.3f}")
    assert status.startswith("503")
    assert headers["Retry-After"] == "5"
    assert json.loads(body)["error"]["code"] == "facility_unavailable"
    assert activator.supervisor.seen == []


def test_the_wake_counts_from_when_nginx_received_the_request(activator):
    status, _, body = ask(activator, f"{time.time() - 10:.3f}")
    assert status.startswith("200")
    assert json.loads(body)["upstream"] == "sleepy"
    assert "x-medcell-received" not in json.loads(body)["headers"]
    assert int(activator.supervisor.server.held[0]) >= 9_900  # the received time is in ms


@pytest.mark.parametrize(
    "value",
    ["", "soon", "1e9", "nan", "inf", "-5", " 1700000000", "0x10", "1700000000.1234567", "Ⅸ"],
)
def test_a_received_time_that_is_no_number_counts_as_now(value):
    assert received_age(value, time.time(), 60.0) == 0.0


def test_a_received_time_in_the_future_or_long_past_counts_as_now(activator):
    now = time.time()
    assert received_age(f"{now + 30:.3f}", now, 60.0) == 0.0
    assert received_age(f"{now - 3600:.3f}", now, 60.0) == 0.0
    assert received_age(f"{now - 3:.3f}", now, 60.0) == pytest.approx(3.0, abs=0.01)
    # Answered as if just received, not refused as overdue.
    status, _, _ = ask(activator, f"{now - 3600:.3f}")
    assert status.startswith("200")
    assert int(activator.supervisor.server.held[0]) < 60_000

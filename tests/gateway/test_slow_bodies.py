"""Slow request bodies: a client that trickles its body holds nothing but its own connection."""

import hashlib
import threading
import time

import pytest

from devsupport import localhost
from medcell_common.origins import facility_host

from .rawhttp import SlowBody, client_at
from .upstream import PooledUnixServer

LOGIN = "/api/v1/login"
UPLOAD = "/api/v1/conversations/1/attachments"
THREADS = 4  # the stand-in facility's request threads
ANSWER_WITHIN = 8  # seconds: far more than an answer takes, far less than a trickler lasts


@pytest.fixture
def trickle(make_gateway):
    """Opens slow bodies and feeds each one byte a second (the attack) until the test ends."""
    bodies: list[SlowBody] = []
    stop = threading.Event()

    def feed():
        while not stop.wait(1):
            for body in list(bodies):
                body.send_byte()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()

    def open_(
        gateway, slug: str, target: str, count: int, source: str = "127.0.0.1", length: int = 4096
    ):
        host = facility_host(slug)  # the facility's own origin, as a browser would address it
        opened = [SlowBody(gateway.port, target, length, source, host=host) for _ in range(count)]
        bodies.extend(opened)
        return opened

    yield open_
    stop.set()
    feeder.join()
    for body in bodies:
        body.close()


@pytest.fixture
def tight(shared_gateway):
    """A running facility whose server has only a few threads, as a real one has."""
    server = PooledUnixServer("tight", shared_gateway.socket_of("tight"), THREADS).start()
    yield server
    server.stop()


def get(gateway, slug: str, path: str, source: str = "127.0.0.1") -> int:
    """The status of GET `path` at the facility's own origin, from the loopback address `source`."""
    url = f"{gateway.origin(slug)}{path}"
    return client_at(source).get(url, timeout=ANSWER_WITHIN).status_code


def test_slow_login_bodies_do_not_freeze_the_facility(make_gateway, tight, trickle):
    gateway = make_gateway({"tight": "running", "b": "running"})
    trickle(gateway, "tight", LOGIN, THREADS + 2)
    assert get(gateway, "tight", "/healthz") == 200
    assert get(gateway, "b", "/healthz") == 200
    assert tight.received == 0, "no byte of a half-sent login body reaches the facility"


def test_slow_login_bodies_do_not_stop_waking_a_sleeping_facility(make_gateway, trickle):
    gateway = make_gateway({"sleepy": "asleep"}, MEDCELL_ACTIVATOR_THREADS=str(THREADS))
    trickle(gateway, "sleepy", LOGIN, THREADS + 2)
    assert get(gateway, "sleepy", "/") == 200


def wait_for_status(
    gateway, slug: str, path: str, source: str, status: int, within: float = 5
) -> int:
    deadline = time.monotonic() + within
    while (seen := get(gateway, slug, path, source)) != status and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def test_one_client_holds_only_a_few_requests_at_a_facility(make_gateway, trickle):
    gateway = make_gateway(
        {"a": "running", "b": "running", "sleepy": "asleep"},
        MEDCELL_GATEWAY_CONN_PER_FACILITY="3",
        MEDCELL_GATEWAY_ACTIVATOR_PER_CLIENT="2",
    )
    trickle(gateway, "a", LOGIN, 3, source="127.0.0.2")
    assert wait_for_status(gateway, "a", "/healthz", "127.0.0.2", 429) == 429
    assert get(gateway, "a", "/healthz", source="127.0.0.3") == 200
    assert get(gateway, "b", "/healthz", source="127.0.0.2") == 200

    trickle(gateway, "sleepy", LOGIN, 2, source="127.0.0.4")
    assert wait_for_status(gateway, "sleepy", "/", "127.0.0.4", 429) == 429
    assert get(gateway, "sleepy", "/", source="127.0.0.5") == 200


def test_slow_uploads_never_take_all_of_a_facilitys_threads(make_gateway, tight, trickle):
    gateway = make_gateway({"tight": "running"}, MEDCELL_GATEWAY_UPLOADS_PER_FACILITY="2")
    uploads = [
        body
        for client in range(2, 2 + THREADS)
        for body in trickle(gateway, "tight", UPLOAD, 1, f"127.0.0.{client}", 10 << 20)
    ]
    assert get(gateway, "tight", "/healthz") == 200
    refused = [body for body in uploads if (body.answer(0.5) or b"").startswith(b"HTTP/1.1 429")]
    assert len(refused) == THREADS - 2


def test_slow_uploads_never_take_all_of_the_activators_threads(make_gateway, trickle):
    gateway = make_gateway(
        {"sleepy": "asleep"},
        MEDCELL_ACTIVATOR_THREADS=str(THREADS),
        MEDCELL_GATEWAY_ACTIVATOR_UPLOADS="2",
        MEDCELL_GATEWAY_UPLOADS_PER_FACILITY="0",  # the activator's own cap is what holds here
    )
    uploads = [
        body
        for client in range(2, 2 + THREADS)
        for body in trickle(gateway, "sleepy", UPLOAD, 1, f"127.0.0.{client}", 10 << 20)
    ]
    assert get(gateway, "sleepy", "/") == 200
    refused = [body for body in uploads if (body.answer(0.5) or b"").startswith(b"HTTP/1.1 429")]
    assert len(refused) == THREADS - 2


def test_an_upload_that_stalls_is_cut_off(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_BODY_TIMEOUT="2")
    stalled = SlowBody(gateway.port, UPLOAD, 1 << 20, host=facility_host("a"))
    try:
        answer = stalled.answer(within=15)
    finally:
        stalled.close()
    assert answer is not None, "the gateway still waits for the rest of the body"
    assert not answer.startswith(b"HTTP/1.1 2"), "a cut-off upload must not look accepted"


def test_a_normal_upload_streams_to_the_facility(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_TIMEOUT="30")
    size, block = 20 << 20, b"\x17" * 65536
    digest, seen_early = hashlib.sha256(), []

    class Body:
        len = size  # a declared length, as a browser's upload has

        def __iter__(self):
            start = upstreams["a"].received
            for sent in range(0, size, len(block)):
                if sent == size // 2:
                    # Half sent: the facility is already reading, it does not wait for the end.
                    deadline = time.monotonic() + 10
                    while upstreams["a"].received == start and time.monotonic() < deadline:
                        time.sleep(0.01)
                    seen_early.append(upstreams["a"].received > start)
                digest.update(block)
                yield block

    response = localhost.post(f"{gateway.origin('a')}{UPLOAD}", data=Body())
    assert response.status_code == 200
    assert response.json()["body_size"] == size
    assert response.json()["body_sha256"] == digest.hexdigest()
    assert seen_early == [True]


def test_a_facilitys_own_host_streams_uploads_and_reads_other_bodies_whole(make_gateway):
    gateway = make_gateway(MEDCELL_DOMAIN="example.org")
    session = client_at("127.0.0.1")
    host = {"Host": f"a.example.org:{gateway.port}"}
    upload = session.post(f"{gateway.url}{UPLOAD}", data=b"u" * (2 << 20), headers=host)
    assert upload.status_code == 200 and upload.json()["body_size"] == 2 << 20
    assert upload.json()["path"] == UPLOAD
    other = session.post(f"{gateway.url}{LOGIN}", data=b"l" * (2 << 20), headers=host)
    assert other.status_code == 413, "bodies that are not files are read whole, and small"

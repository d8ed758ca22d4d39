"""Sleeping facilities: nginx hands their requests to the activator, which wakes them through the
supervisor (a fake one here, on its real unix socket) and passes the held request on."""

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from devsupport import localhost

from .upstream import FakeSupervisor

# A facility upload route: the gateway streams its body (every other body it reads whole).
UPLOAD = "/api/v1/conversations/1/attachments"


def test_first_request_wakes_the_facility_and_is_answered(gateway):
    response = localhost.get(f"{gateway.origin('sleepy')}/api/v1/x?y=1")
    assert response.status_code == 200
    assert response.json()["upstream"] == "sleepy"
    assert response.json()["path"] == "/api/v1/x?y=1"
    assert "x-forwarded-prefix" not in response.json()["headers"]
    assert "x-medcell-slug" not in response.json()["headers"]
    assert gateway.supervisor.seen == [("POST", "/wake/sleepy")]
    assert response.headers["Strict-Transport-Security"]


def test_held_post_body_reaches_the_woken_facility(gateway):
    body = b"\x01" * (3 * 1024 * 1024 + 7)
    response = localhost.post(f"{gateway.origin('sleepy')}{UPLOAD}", data=body)
    assert response.json()["body_size"] == len(body)
    assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()

    def chunks():
        yield b"a" * 70000
        yield b"b" * 5

    chunked = localhost.post(f"{gateway.origin('sleepy')}{UPLOAD}", data=chunks())
    assert chunked.json()["body_size"] == 70005


def test_parallel_first_requests_cause_one_wake(gateway):
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: localhost.get(f"{gateway.origin('sleepy')}/").status_code, range(8))
        )
    assert statuses == [200] * 8
    assert len(gateway.supervisor.seen) == 1


def test_supervisor_refusals_become_the_gateways_answers(gateway):
    gone = localhost.get(f"{gateway.origin('gone')}/")
    halted = localhost.get(f"{gateway.origin('halted')}/")
    broken = localhost.get(f"{gateway.origin('broken')}/")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert halted.status_code == 503 and halted.headers["Retry-After"] == "30"
    assert broken.status_code == 503 and broken.headers["Retry-After"] == "5"
    for response in (gone, halted, broken):
        assert response.headers["Content-Type"] == "application/json"


def test_poll_of_a_sleeping_facility_is_answered_without_waking_it(gateway):
    poll = {"X-Medcell-Poll": "1"}
    response = localhost.get(f"{gateway.origin('sleepy')}/api/v1/x", headers=poll)
    assert response.status_code == 204
    assert gateway.supervisor.seen == []
    assert gateway.upstreams["sleepy"].seen == []


def test_a_client_cannot_name_the_facility_to_wake(gateway):
    response = localhost.get(f"{gateway.origin('a')}/", headers={"X-Medcell-Slug": "sleepy"})
    assert response.json()["upstream"] == "a"
    assert "x-medcell-slug" not in response.json()["headers"]
    assert gateway.supervisor.seen == []


def test_a_request_is_held_while_the_supervisor_restarts(gateway, make_gateway):
    patient = make_gateway({"sleepy": "asleep"}, MEDCELL_GATEWAY_TIMEOUT="20")
    old = gateway.supervisor
    path, answers = old.path, dict(old.server.answers)
    old.stop()  # its socket is gone, as while the supervisor's container restarts
    back = {}

    def restart():
        time.sleep(1.5)  # the scenario: the supervisor is away for a while, then back
        new = FakeSupervisor(path)
        new.server.answers.update(answers)
        back["server"] = new.start()

    restarting = threading.Thread(target=restart)
    restarting.start()
    try:
        response = localhost.get(f"{patient.origin('sleepy')}/", timeout=30)
    finally:
        restarting.join()
        gateway.supervisor = back["server"]
    assert response.status_code == 200
    assert gateway.supervisor.seen == [("POST", "/wake/sleepy")]
    # It says how long it has held the request (the supervisor's wake time starts there).
    assert int(gateway.supervisor.server.held[0]) >= 1500


def test_a_wake_cut_off_by_a_dying_supervisor_is_asked_again(gateway, make_gateway):
    patient = make_gateway({"sleepy": "asleep"}, MEDCELL_GATEWAY_TIMEOUT="20")
    gateway.supervisor.server.hang_ups = 1
    response = localhost.get(f"{patient.origin('sleepy')}/", timeout=30)
    assert response.status_code == 200
    assert response.json()["upstream"] == "sleepy"
    assert gateway.supervisor.seen == [("POST", "/wake/sleepy")] * 2


def test_a_supervisor_that_never_answers_gives_503_with_retry_after(gateway, make_gateway):
    patient = make_gateway(
        {"sleepy": "asleep"}, MEDCELL_GATEWAY_TIMEOUT="20", MEDCELL_GATEWAY_WAKE_TIMEOUT="2"
    )
    gateway.supervisor.server.hang_ups = 1000
    try:
        response = localhost.get(f"{patient.origin('sleepy')}/", timeout=30)
    finally:
        gateway.supervisor.server.hang_ups = 0
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "facility_unavailable"
    assert gateway.upstreams["sleepy"].seen == []


def test_a_request_that_waited_for_a_thread_gets_503_before_nginx_would_give_up(
    gateway, make_gateway
):
    # One activator thread and slow wakes: the second request waits for the first one's thread.
    # nginx gives up after 10 s, while the second request would be answered after two wakes
    # (11 s); the activator's deadline (7.5 s, counted from receipt) ends before nginx's.
    patient = make_gateway(
        {"sleepy": "asleep"}, MEDCELL_GATEWAY_TIMEOUT="10", MEDCELL_ACTIVATOR_THREADS="1"
    )
    gateway.supervisor.server.delay = 5.5
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(localhost.get, f"{patient.origin('sleepy')}/first", timeout=30)
            while not gateway.supervisor.seen:  # the first request holds the only thread
                time.sleep(0.02)
            second = pool.submit(localhost.get, f"{patient.origin('sleepy')}/second", timeout=30)
            first, second = first.result(), second.result()
    finally:
        gateway.supervisor.server.delay = 0.3
    assert first.status_code == 200
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "5"
    assert second.json()["error"]["code"] == "facility_unavailable"


def test_a_client_cannot_say_when_nginx_received_its_request(gateway, make_gateway):
    patient = make_gateway({"sleepy": "asleep", "a": "running"}, MEDCELL_GATEWAY_TIMEOUT="20")
    # Past the activator's deadline (15 s here) if it were believed.
    long_ago = {"X-Medcell-Received": f"{time.time() - 18:.3f}"}
    sleeping = localhost.get(f"{patient.origin('sleepy')}/", headers=long_ago, timeout=30)
    awake = localhost.get(f"{patient.origin('a')}/", headers=long_ago, timeout=30)
    assert sleeping.status_code == 200
    assert gateway.supervisor.seen == [("POST", "/wake/sleepy")]
    for response in (sleeping, awake):
        assert "x-medcell-received" not in response.json()["headers"]

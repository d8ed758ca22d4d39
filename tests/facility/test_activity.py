"""The status endpoint the supervisor reads over the socket, and what counts as activity."""

import io

from services.facility.core.activity import Activity
from services.facility.http.status import ActivityMiddleware

STATUS = "/_medcell/status"
POLL = {"X-Medcell-Poll": "1"}


def status(client) -> dict:
    response = client.get(STATUS)
    assert response.status_code == 200
    return response.json


def test_status_reports_exactly_the_agreed_fields(client):
    body = status(client)
    assert list(body) == [
        "inflight",
        "requests",
        "idle_seconds",
        "busy",
        "next_deadline",
        "outbox",
        "opens",
        "deletions",
        "storage",
    ]
    assert body["outbox"] == 0 and body["opens"] == []
    assert body["inflight"] == 0 and body["requests"] == 0 and body["busy"] is False
    assert isinstance(body["idle_seconds"], float) and body["idle_seconds"] >= 0
    assert isinstance(body["next_deadline"], float)


def test_status_is_refused_to_anything_that_came_through_the_gateway(client):
    response = client.get(STATUS, headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert "inflight" not in response.get_data(as_text=True)


def test_status_is_not_part_of_the_public_api_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert not [p for p in paths if p.startswith("/_medcell")]


def test_requests_count_but_polls_health_checks_and_status_do_not(client, staff_auth, conversation):
    before = status(client)["requests"]
    poll_url = f"/api/v1/conversations/{conversation['id']}/messages"
    assert client.get(poll_url, headers={**staff_auth, **POLL}).status_code == 200
    assert client.get("/healthz").status_code == 200
    status(client)
    assert status(client)["requests"] == before

    client.get(poll_url, headers=staff_auth)
    assert status(client)["requests"] == before + 1


def test_the_poll_header_does_not_exempt_a_write(client, conversation):
    before = status(client)["requests"]
    response = client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"body": "hallo"},
        headers={**conversation["patient"], **POLL},
    )
    assert response.status_code == 201
    assert status(client)["requests"] == before + 1


def test_a_download_is_in_flight_until_its_body_is_closed(client, staff_auth, conversation):
    content = b"%PDF-" + bytes(range(256)) * 4096  # four chunks
    up = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(content), "scan.pdf", "application/pdf")},
        headers=staff_auth,
    ).json
    # The test client leaves earlier responses open (a server closes them): count from here.
    before = status(client)["inflight"]
    download = client.get(f"/api/v1/attachments/{up['id']}", headers=staff_auth, buffered=False)
    assert download.status_code == 200
    first = next(download.response)
    assert status(client)["inflight"] == before + 1

    rest = b"".join(download.response)
    assert status(client)["inflight"] == before + 1  # every byte sent, but not yet closed
    download.close()
    assert first + rest == content
    assert status(client)["inflight"] == before


def test_next_deadline_is_the_key_rotation_when_no_conversation_expires_sooner(client, app):
    keyring = app.extensions["medcell"].keyring
    conn = app.extensions["medcell"].store.conn()
    rotation_due = keyring.next_rotation(conn, 86400) / 1e6
    assert status(client)["next_deadline"] == rotation_due


def test_next_deadline_is_the_earliest_expiry_when_sooner(make_app):
    from .conftest import STAFF, login

    app = make_app("brief", retention=3600)
    client = app.test_client()
    conv = client.post("/api/v1/conversations", json={}, headers=login(client, *STAFF)).json
    row = (
        app.extensions["medcell"]
        .store.conn()
        .execute("SELECT last_activity FROM conversations WHERE id = ?", (conv["id"],))
    )
    assert status(client)["next_deadline"] == (row.fetchone()[0] + 3600 * 1_000_000) / 1e6


def test_busy_until_the_first_sweep_and_while_keys_rotate(app, client):
    from services.facility.core.retention import Sweeper

    medcell = app.extensions["medcell"]
    sweeper = Sweeper(medcell.store, medcell.conversations, medcell.keyring, 86400)
    medcell.sweeper = sweeper
    assert status(client)["busy"] is True  # not started yet: nothing caught up
    sweeper.start()
    try:
        assert sweeper.wait_passes(1, timeout=30)
        assert status(client)["busy"] is False
        with medcell.keyring._file_lock():  # what a rotation (or `rotate-key`) holds
            assert status(client)["busy"] is True
    finally:
        sweeper.stop()


# -- the middleware alone, with a clock the test moves -------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def call(app, path: str, headers: dict | None = None, method: str = "GET"):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()})
    return app(environ, lambda status, headers: None)


def hello(environ, start_response):
    start_response("200 OK", [])
    return iter([b"hello"])


def test_idle_time_counts_from_the_last_counted_request_and_ignores_polls():
    ticks = Ticks()
    activity = Activity(monotonic=ticks)
    app = ActivityMiddleware(hello, activity, lambda: {})
    ticks.now += 5
    assert activity.snapshot()["idle_seconds"] == 5.0  # since start when nothing came yet

    body = call(app, "/staff/")
    ticks.now += 30
    assert activity.snapshot() == {"inflight": 1, "requests": 1, "idle_seconds": 0.0}
    body.close()
    ticks.now += 7
    call(app, "/api/v1/conversations/x/messages", POLL).close()
    call(app, "/healthz").close()
    ticks.now += 3
    assert activity.snapshot() == {"inflight": 0, "requests": 1, "idle_seconds": 10.0}


def test_a_failing_app_does_not_leave_a_request_in_flight():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    activity = Activity()
    app = ActivityMiddleware(broken, activity, lambda: {})
    try:
        call(app, "/staff/")
    except RuntimeError:
        pass
    assert activity.snapshot()["inflight"] == 0

"""The deletion job: expired conversations vanish on time, whole; live ones stay."""

import time

from services.facility.core import retention
from services.facility.core.retention import Sweeper

from .conftest import STAFF, login


def post(client, conv, headers, body):
    return client.post(
        f"/api/v1/conversations/{conv['id']}/messages", json={"body": body}, headers=headers
    )


def sweep(app):
    medcell = app.extensions["medcell"]
    return retention.sweep(medcell.store.conn(), medcell.conversations, medcell.keyring, 86400)


def table_counts(app) -> dict:
    conn = app.extensions["medcell"].store.conn()
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("conversations", "messages", "attachments", "attachment_chunks", "record_keys")
    }


def test_expired_conversation_vanishes_with_its_last_message(make_app, clock, staff_auth):
    app = make_app("short", retention=3600)
    client = app.test_client()
    staff = login(client, *STAFF)
    old = client.post("/api/v1/conversations", json={"title": "old"}, headers=staff).json
    post(client, old, staff, "erste")
    clock.advance(1800)
    post(client, old, staff, "letzte Nachricht")
    clock.advance(1200)
    fresh = client.post("/api/v1/conversations", json={"title": "fresh"}, headers=staff).json

    clock.advance(2399)  # old's last message is 3599 s old
    assert sweep(app)["expired"] == 0
    clock.advance(2)  # now 3601 s: old is expired, fresh has 20 minutes left
    result = sweep(app)

    assert result["expired"] == 1
    listed = client.get("/api/v1/conversations", headers=staff).json["conversations"]
    assert [c["title"] for c in listed] == ["fresh"]
    assert post(client, old, staff, "zu spät").status_code == 404
    assert table_counts(app) == {
        "conversations": 1,
        "messages": 0,
        "attachments": 0,
        "attachment_chunks": 0,
        "record_keys": 1,
    }
    assert fresh["id"] == listed[0]["id"]


def test_activity_keeps_a_conversation_alive(client, staff_auth, conversation, clock, app):
    for _ in range(3):
        clock.advance(5 * 86400)
        assert post(client, conversation, conversation["patient"], "noch da?").status_code == 201
        assert sweep(app)["expired"] == 0
    clock.advance(7 * 86400 + 1)
    assert sweep(app)["expired"] == 1


def test_expired_conversation_is_gone_for_readers_before_the_job_runs(client, conversation, clock):
    clock.advance(7 * 86400)
    staff_auth = login(client, *STAFF)
    response = client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=staff_auth
    )
    assert response.status_code == 404
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []


def test_large_conversation_is_deleted_in_bounded_slices(
    app, client, staff_auth, conversation, clock
):
    for i in range(30):
        post(client, conversation, staff_auth, f"m{i}")
    clock.advance(7 * 86400 + 1)
    medcell = app.extensions["medcell"]
    assert medcell.conversations.delete_expired(medcell.store.conn(), batch=7) == 1
    assert table_counts(app)["messages"] == 0 and table_counts(app)["record_keys"] == 0


def test_shortening_retention_expires_old_conversations(
    client, admin_auth, conversation, clock, app
):
    clock.advance(3 * 3600)
    client.put("/api/v1/settings", json={"retention": "2h"}, headers=admin_auth)
    assert sweep(app)["expired"] == 1


def test_the_job_also_rotates_keys_when_due(app, clock):
    clock.advance(86401)
    assert sweep(app)["rotated"]["version"] == 2


def test_sweeper_thread_wakes_at_the_deadline_not_at_its_polling_interval(tmp_path):
    from services.facility import create_app

    from .conftest import make_config

    app = create_app({"MEDCELL": make_config(tmp_path, "live", retention=1)})
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()
    medcell.conversations.create(conn, "soon gone")
    # A safety look only every 60 s: deletion well before that shows the job wakes at the deadline.
    sweeper = Sweeper(
        medcell.store,
        medcell.conversations,
        medcell.keyring,
        86400,
        safety_seconds=60,
    )
    sweeper.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0:
                break
            time.sleep(0.1)
    finally:
        sweeper.stop()
    assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0


def test_only_one_sweeper_per_facility_works(app, clock):
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()

    def job() -> Sweeper:
        return Sweeper(
            medcell.store,
            medcell.conversations,
            medcell.keyring,
            86400,
            safety_seconds=3600,
        )

    first, second = job(), job()
    first.start()
    try:
        assert first.wait_passes(1, timeout=10)
        second.start()
        assert second.wait_passes(1, timeout=10) and not second.busy
        medcell.conversations.create(conn, "long gone")
        clock.advance(8 * 86400)
        second.wake()
        assert second.wait_passes(2, timeout=10)
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
        first.wake()
        assert first.wait_passes(2, timeout=10)
        assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
    finally:
        first.stop()
        second.stop()


def start_sweeper(app) -> Sweeper:
    """The app's deletion job, as create_app makes it, running on the test's clock."""
    medcell = app.extensions["medcell"]
    sweeper = Sweeper(
        medcell.store,
        medcell.conversations,
        medcell.keyring,
        86400,
        wake=medcell.deadlines_changed,
    )
    sweeper.start()
    assert sweeper.wait_passes(1, timeout=30)  # the sweep at start
    return sweeper


def test_job_sleeps_until_the_key_rotation_when_nothing_expires(app, clock):
    sweeper = start_sweeper(app)
    try:
        medcell = app.extensions["medcell"]
        rotation = medcell.keyring.next_rotation(medcell.store.conn(), 86400)
        assert sweeper.planned == rotation
        assert sweeper.busy is False
    finally:
        sweeper.stop()


def test_a_new_conversation_wakes_the_job_at_once(make_app, clock):
    app = make_app("brief", retention=3600)
    client = app.test_client()
    staff = login(client, *STAFF)
    sweeper = start_sweeper(app)
    try:
        # Nothing expires yet: the job waits for the rotation, a day away.
        assert sweeper.planned > clock() + 86000 * 1_000_000
        conv = client.post("/api/v1/conversations", json={}, headers=staff).json
        # Woken by the creation, long before any timer: it now waits for this expiry.
        assert sweeper.wait_passes(2, timeout=30)
        last_activity = _last_activity(app, conv["id"])
        assert sweeper.planned == last_activity + 3600 * 1_000_000

        clock.advance(600)
        post(client, conv, staff, "noch da")
        assert sweeper.wait_passes(3, timeout=30)
        assert sweeper.planned == _last_activity(app, conv["id"]) + 3600 * 1_000_000

        clock.advance(3601)
        sweeper.wake()  # stands in for the timer, which runs on real time
        assert sweeper.wait_passes(4, timeout=30)
        assert table_counts(app)["conversations"] == 0
    finally:
        sweeper.stop()


def test_shortening_retention_wakes_the_job(client, admin_auth, conversation, clock, app):
    sweeper = start_sweeper(app)
    try:
        passes = sweeper.passes
        assert (
            client.put("/api/v1/settings", json={"retention": "2h"}, headers=admin_auth).status_code
            == 200
        )
        assert sweeper.wait_passes(passes + 1, timeout=30)
        assert sweeper.planned == _last_activity(app, conversation["id"]) + 2 * 3600 * 1_000_000
    finally:
        sweeper.stop()


def test_next_deadline_is_the_sooner_of_expiry_and_rotation(app, clock, conversation):
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()
    rotation = medcell.keyring.next_rotation(conn, 86400)
    assert retention.next_deadline(conn, medcell.conversations, medcell.keyring, 86400) == (
        rotation
    )  # a week's retention ends after the day's rotation
    expiry = _last_activity(app, conversation["id"]) + 7 * 86400 * 1_000_000
    assert retention.next_deadline(conn, medcell.conversations, medcell.keyring, 30 * 86400) == (
        expiry
    )


def _last_activity(app, conv_id: str) -> int:
    conn = app.extensions["medcell"].store.conn()
    return conn.execute(
        "SELECT last_activity FROM conversations WHERE id = ?", (conv_id,)
    ).fetchone()[0]


def test_the_status_reports_how_late_each_expired_conversation_went(make_app, clock, staff_auth):
    app = make_app("lag", retention=3600)
    client = app.test_client()
    staff = login(client, *STAFF)
    for title in ("Befund Mai", "Befund Juni"):
        conv = client.post("/api/v1/conversations", json={"title": title}, headers=staff).json
        post(client, conv, staff, "Befund")
        clock.advance(600)
    clock.advance(3600 - 600 + 10)  # the first expired 610 s ago, the second 10 s ago
    assert sweep(app)["expired"] == 2
    gone = client.post("/api/v1/conversations", json={"title": "gone"}, headers=staff).json
    assert client.delete(f"/api/v1/conversations/{gone['id']}", headers=staff).status_code == 200

    report = client.get("/_medcell/status").json["deletions"]

    # One in the bucket up to 15 s, one in the bucket up to 900 s (DELETION_LAG_BUCKETS).
    assert report["lag_buckets"] == [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    assert report["lag_sum_ms"] == 620_000
    assert report["reasons"] == {"patient": 0, "staff": 1, "expiry": 2, "facility_wipe": 0}
    assert "Befund" not in str(report) and gone["id"] not in str(report)

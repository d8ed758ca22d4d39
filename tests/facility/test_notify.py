"""E-mail notifications inside the facility: opt-in, the sealed outbox, its socket endpoints."""

import dataclasses
import io
import json
import sqlite3

import pytest

from provisioner.supervisor import notifications
from services.facility import create_app
from services.facility.core import store

from .conftest import STAFF, DocumentedClient, login

OUTBOX, ACK = "/_medcell/outbox", "/_medcell/outbox/ack"
ORIGIN = "https://alpha.localhost:8443/"  # the facility's own origin (MEDCELL_PUBLIC_URL unset)
SECRETS = {
    "title": "Knee-TITLE-Vb71",
    "staff": "STAFF-TEXT-Qw82",
    "patient": "PATIENT-TEXT-Lm93",
    "file": "FILENAME-Zx04.pdf",
}


@pytest.fixture
def app(mail_app):
    return mail_app


def raw_bytes(directory) -> bytes:
    """Every byte of every file in the data directory (database, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["medcell"].config.database)


def outbox(client) -> list[dict]:
    response = client.get(OUTBOX)
    assert response.status_code == 200
    return response.json["mails"]


def ack(client, mails: list[dict]) -> int:
    response = client.post(ACK, json={"ids": [m["id"] for m in mails]})
    assert response.status_code == 200, response.json
    return response.json["deleted"]


def new_conversation(client, staff_auth, pin: str | None = None) -> dict:
    body = {"title": SECRETS["title"], **({"pin": pin} if pin else {})}
    conv = client.post("/api/v1/conversations", json=body, headers=staff_auth).json
    return {**conv, "patient": {"Authorization": f"Bearer {conv['patient_token']}"}}


def write(client, conv: dict, auth_header: dict, body: str) -> None:
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/messages", json={"body": body}, headers=auth_header
    )
    assert response.status_code == 201


def opt_in(client, auth_header: dict, email: str) -> None:
    response = client.put("/api/v1/notifications", json={"email": email}, headers=auth_header)
    assert response.status_code == 200, response.json
    assert response.json == {"enabled": True, "email": email}


def as_mail(mail: dict) -> tuple[str, str]:
    """(subject, body) the relay writes for a queued notification; its check must pass."""
    return notifications.render(notifications.check(mail, ORIGIN))


def assert_content_free(mail: dict) -> None:
    text = json.dumps(mail)
    for secret in SECRETS.values():
        assert secret not in text


def test_a_patient_message_tells_each_opted_in_staff_member_without_content(
    app, client, staff_auth, admin_auth
):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, conv["patient"], SECRETS["patient"])

    mails = outbox(client)
    assert [m["to"] for m in mails] == ["nurse@praxis.example"]  # the admin did not opt in
    mail = mails[0]
    assert set(mail) == {"id", "to", "kind", "lang", "link", "facility_name"}  # no text at all
    subject, body = as_mail(mail)
    assert subject == "Neue Nachricht bei Alpha / New message at Alpha"
    assert f"{ORIGIN}staff/" in body
    assert conv["id"] not in body
    assert_content_free(mail)


def test_the_staff_link_comes_from_the_configuration_not_from_the_request(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    forged = {**conv["patient"], "X-Forwarded-Host": "alpha.evil.example"}
    write(client, conv, forged, "hello")
    (mail,) = outbox(client)
    assert mail["link"] == f"{ORIGIN}staff/"
    assert "evil" not in as_mail(mail)[1]


def test_a_removed_account_gets_no_more_mail(app, client, staff_auth, admin_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    assert client.delete(f"/api/v1/staff/{STAFF[0]}", headers=admin_auth).status_code == 204
    conv = new_conversation(client, admin_auth)
    write(client, conv, conv["patient"], "hello")
    assert outbox(client) == []
    conn = db(app)
    assert conn.execute("SELECT count(*) FROM notify_staff").fetchone()[0] == 0
    conn.close()


def test_a_deactivated_account_gets_no_mail_until_it_is_reactivated(
    app, client, staff_auth, admin_auth
):
    opt_in(client, staff_auth, "nurse@praxis.example")
    account = f"/api/v1/staff/{STAFF[0]}"
    assert client.post(f"{account}/deactivate", headers=admin_auth).status_code == 204
    conv = new_conversation(client, admin_auth)
    write(client, conv, conv["patient"], "hello")
    assert outbox(client) == []
    assert client.post(f"{account}/reactivate", headers=admin_auth).status_code == 204
    other = new_conversation(client, admin_auth)
    write(client, other, other["patient"], "again")
    assert [m["to"] for m in outbox(client)] == ["nurse@praxis.example"]


def test_a_staff_message_queues_nothing_for_staff(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, staff_auth, SECRETS["staff"])
    assert outbox(client) == []


def test_at_most_one_staff_mail_per_conversation_in_fifteen_minutes(app, client, staff_auth, clock):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv, other = new_conversation(client, staff_auth), new_conversation(client, staff_auth)
    for _ in range(3):
        write(client, conv, conv["patient"], "again")
    write(client, other, other["patient"], "elsewhere")
    assert len(outbox(client)) == 2  # one per conversation
    clock.advance(14 * 60)
    write(client, conv, conv["patient"], "still within the quarter hour")
    assert len(outbox(client)) == 2
    clock.advance(61)
    client.post(
        f"/api/v1/conversations/{conv['id']}/attachments",
        headers=conv["patient"],
        data={"file": (io.BytesIO(b"%PDF-1.4 x"), SECRETS["file"])},
    )
    mails = outbox(client)
    assert len(mails) == 3
    for mail in mails:
        assert_content_free(mail)


def test_the_patient_who_gave_an_address_hears_that_the_practice_answered(app, client, staff_auth):
    conv = new_conversation(client, staff_auth)
    base = f"/api/v1/conversations/{conv['id']}/notifications"
    assert client.get(base, headers=conv["patient"]).json == {"enabled": True, "email_set": False}
    response = client.put(base, json={"email": "pat@mail.example"}, headers=conv["patient"])
    assert response.json == {"enabled": True, "email_set": True}
    # Staff learn only that the patient is notified, never the address.
    assert client.get(base, headers=staff_auth).json == {"enabled": True, "email_set": True}

    write(client, conv, staff_auth, SECRETS["staff"])
    (mail,) = outbox(client)
    assert mail["to"] == "pat@mail.example"
    subject, body = as_mail(mail)
    assert subject == "Alpha hat geantwortet / Your practice has answered"
    assert conv["patient_token"] not in body and "http" not in body
    assert_content_free(mail)


def test_staff_cannot_set_a_patients_address(app, client, staff_auth):
    conv = new_conversation(client, staff_auth)
    response = client.put(
        f"/api/v1/conversations/{conv['id']}/notifications",
        json={"email": "someone@else.example"},
        headers=staff_auth,
    )
    assert response.status_code == 403


def test_the_patient_address_is_sealed_and_can_be_removed(app, client, staff_auth):
    conv = new_conversation(client, staff_auth)
    base = f"/api/v1/conversations/{conv['id']}/notifications"
    client.put(base, json={"email": "sealed-pat@mail.example"}, headers=conv["patient"])
    data_dir = app.extensions["medcell"].config.data_dir
    assert b"sealed-pat@mail.example" not in raw_bytes(data_dir)
    response = client.put(base, json={"email": None}, headers=conv["patient"])
    assert response.json["email_set"] is False
    write(client, conv, staff_auth, "answer")
    assert outbox(client) == []


@pytest.mark.parametrize(
    "email",
    [
        "a@b.example\r\nBcc: evil@x.example",
        "a@b.example, c@d.example",
        "Name <a@b.example>",
        "no-at-sign",
        "a@localhost",
        "x" * 65 + "@b.example",
        42,
    ],
)
def test_anything_but_one_plain_address_is_refused(app, client, staff_auth, email):
    response = client.put("/api/v1/notifications", json={"email": email}, headers=staff_auth)
    assert response.status_code == 400
    assert client.get("/api/v1/notifications", headers=staff_auth).json["email"] is None


def test_unknown_fields_are_refused(app, client, staff_auth):
    response = client.put(
        "/api/v1/notifications", json={"email": "a@b.example", "cc": "x"}, headers=staff_auth
    )
    assert response.status_code == 400


def test_queued_mails_and_the_patient_address_are_deleted_with_the_conversation(
    app, client, staff_auth
):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    client.put(
        f"/api/v1/conversations/{conv['id']}/notifications",
        json={"email": "gone-pat@mail.example"},
        headers=conv["patient"],
    )
    write(client, conv, conv["patient"], SECRETS["patient"])
    write(client, conv, staff_auth, SECRETS["staff"])
    assert len(outbox(client)) == 2
    conn = db(app)
    sealed = [
        value
        for table in ("outbox", "notify_patient")
        for row in conn.execute(f"SELECT * FROM {table}")
        for value in row
        if isinstance(value, bytes)
    ]
    conn.close()
    assert len(sealed) == 3
    data_dir = app.extensions["medcell"].config.data_dir
    assert all(blob in raw_bytes(data_dir) for blob in sealed)

    response = client.delete(f"/api/v1/conversations/{conv['id']}", headers=conv["patient"])
    assert response.status_code in (200, 204)

    assert outbox(client) == []
    after = raw_bytes(data_dir)
    assert [blob for blob in sealed if blob in after] == []
    conn = db(app)
    for table in ("outbox", "notify_patient", "notify_sent"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    conn.close()


def test_acknowledged_mails_are_gone_for_good(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, conv["patient"], "hello")
    conn = db(app)
    (blob,) = conn.execute("SELECT mail FROM outbox").fetchone()
    conn.close()
    mails = outbox(client)
    assert client.get("/_medcell/status").json["outbox"] == 1
    assert ack(client, mails) == 1
    assert ack(client, mails) == 0  # twice is harmless
    assert client.get("/_medcell/status").json["outbox"] == 0
    assert blob not in raw_bytes(app.extensions["medcell"].config.data_dir)


def test_mails_the_relay_could_not_send_in_a_day_are_dropped(app, client, staff_auth, clock):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, conv["patient"], "hello")
    clock.advance(86400 + 1)
    assert outbox(client) == []
    assert client.get("/_medcell/status").json["outbox"] == 0


def test_outbox_is_refused_to_anything_that_came_through_the_gateway(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, conv["patient"], "hello")
    through = {"X-Forwarded-For": "203.0.113.9"}
    response = client.get(OUTBOX, headers=through)
    assert response.status_code == 404 and "nurse" not in response.get_data(as_text=True)
    response = client.post(ACK, json={"ids": []}, headers=through)
    assert response.status_code == 404
    assert len(outbox(client)) == 1


def test_outbox_endpoints_refuse_bad_requests(app, client):
    assert client.post(OUTBOX).status_code == 405
    assert client.get(ACK).headers["Allow"] == "POST"
    assert client.post(ACK, data=b"not json").status_code == 400
    assert client.post(ACK, json={"ids": "x"}).status_code == 400
    assert client.post(ACK, json={"ids": [], "more": 1}).status_code == 400
    assert client.post(ACK, json={"ids": ["x"] * 51}).status_code == 400
    assert client.post(ACK, data=b"x" * (65 * 1024)).status_code == 413


def test_fetching_the_outbox_is_not_activity(app, client, staff_auth):
    before = client.get("/_medcell/status").json["requests"]
    outbox(client)
    client.post(ACK, json={"ids": []})
    assert client.get("/_medcell/status").json["requests"] == before


def test_a_pin_protected_link_can_be_mailed_once_without_keeping_the_address(
    app, client, staff_auth
):
    conv = new_conversation(client, staff_auth, pin="4711")
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/link-mail",
        json={"email": "new-pat@mail.example", "patient_token": conv["patient_token"]},
        headers=staff_auth,
    )
    assert response.status_code == 202
    (mail,) = outbox(client)
    assert mail["to"] == "new-pat@mail.example"
    subject, body = as_mail(mail)
    assert subject == "Ihr Zugang zu Alpha / Your access to Alpha"
    assert f"{ORIGIN}p/{conv['patient_token']}" in body
    assert "4711" not in subject + body
    assert_content_free(mail)
    ack(client, [mail])
    # Nothing keeps the address: no later answer goes to it.
    write(client, conv, staff_auth, "answer")
    assert outbox(client) == []


def test_a_link_without_pin_or_not_current_is_not_mailed(app, client, staff_auth):
    plain = new_conversation(client, staff_auth)
    response = client.post(
        f"/api/v1/conversations/{plain['id']}/link-mail",
        json={"email": "pat@mail.example", "patient_token": plain["patient_token"]},
        headers=staff_auth,
    )
    assert response.status_code == 409
    pinned = new_conversation(client, staff_auth, pin="4711")
    response = client.post(
        f"/api/v1/conversations/{pinned['id']}/link-mail",
        json={"email": "pat@mail.example", "patient_token": plain["patient_token"]},
        headers=staff_auth,
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "stale_link"
    assert outbox(client) == []


def test_nothing_is_queued_or_kept_when_mail_is_not_set_up(make_app):
    app = make_app("beta")  # MEDCELL_MAIL unset
    app.test_client_class = DocumentedClient
    client = app.test_client()
    staff_auth = login(client, *STAFF)
    assert client.get("/api/v1/notifications", headers=staff_auth).json == {
        "enabled": False,
        "email": None,
    }
    response = client.put(
        "/api/v1/notifications", json={"email": "a@b.example"}, headers=staff_auth
    )
    assert response.status_code == 409
    conv = new_conversation(client, staff_auth)
    response = client.put(
        f"/api/v1/conversations/{conv['id']}/notifications",
        json={"email": "a@b.example"},
        headers=conv["patient"],
    )
    assert response.status_code == 409
    write(client, conv, conv["patient"], "hello")
    assert client.get(OUTBOX).json == {"mails": []}
    assert client.get("/_medcell/status").json["outbox"] == 0
    app.extensions["medcell"].store.close()


def test_mails_queued_before_mail_was_switched_off_are_dropped_at_start(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    write(client, conv, conv["patient"], "hello")
    medcell = app.extensions["medcell"]
    medcell.store.close()
    config = dataclasses.replace(medcell.config, mail=False)
    restarted = create_app({"MEDCELL": config, "CLOCK": medcell.clock, "TESTING": True})
    try:
        assert restarted.test_client().get("/_medcell/status").json["outbox"] == 0
        conn = restarted.extensions["medcell"].store.conn()
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert conn.execute(
            "SELECT value FROM counters WHERE name = 'mails_dropped'"
        ).fetchone() == (1,)
    finally:
        restarted.extensions["medcell"].store.close()


def test_texts_an_older_release_queued_are_dropped_not_handed_over(app, client, staff_auth):
    opt_in(client, staff_auth, "nurse@praxis.example")
    conv = new_conversation(client, staff_auth)
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()
    old = {"to": "nurse@praxis.example", "subject": "Neue Nachricht", "body": "Text"}
    with store.write(conn):
        medcell.notifier._enqueue(conn, conv["id"], old)
    assert outbox(client) == []
    assert client.get("/_medcell/status").json["outbox"] == 0
    assert conn.execute("SELECT value FROM counters WHERE name = 'mails_dropped'").fetchone() == (
        1,
    )

"""Links that reach the patient, over the API: the same link mailed again, the practice's text
for the link mail, and a patient's request for their link by address (no oracle)."""

import sqlite3

import pytest

from services.facility.core import links, patients, throttle
from services.facility.core.errors import NotFound

from .conftest import DocumentedClient
from .test_notify import ORIGIN, ack, as_mail, new_conversation, outbox

PATIENT_MAIL = "pat@mail.example"
TEXT = "Guten Tag,\n{praxis} schickt Ihnen Ihren Zugang:\n{link}\nBis bald!"


@pytest.fixture
def app(mail_app):
    return mail_app


def db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.extensions["medcell"].config.database)


def with_address(client, staff_auth, email: str = PATIENT_MAIL, pin: str | None = "2580") -> dict:
    """A conversation whose patient gave `email` for notifications."""
    conv = new_conversation(client, staff_auth, pin=pin)
    session = client.post(
        "/api/v1/patient-sessions",
        json={"token": conv["patient_token"], **({"pin": pin} if pin else {})},
    )
    assert session.status_code == 201, session.json
    response = client.put(
        f"/api/v1/conversations/{conv['id']}/notifications",
        json={"email": email},
        headers={"Authorization": f"Bearer {session.json['token']}"},
    )
    assert response.status_code == 200, response.json
    return conv


def request_link(client, email: str, address: str = "203.0.113.7"):
    return client.post(
        "/api/v1/link-requests", json={"email": email}, environ_base={"REMOTE_ADDR": address}
    )


def assert_error(response, status: int) -> None:
    assert response.status_code == status
    assert set(response.json) == {"error"}
    assert set(response.json["error"]) == {"code", "message"}


def link_opens(app, conv: dict) -> bool:
    """Whether the patient's link still opens its conversation (as /p/<token> checks it)."""
    conn = app.extensions["medcell"].store.conn()
    try:
        return patients.link_conversation(conn, conv["patient_token"])[0] == conv["id"]
    except NotFound:
        return False


def test_the_same_link_is_mailed_again_and_keeps_working(app, client, staff_auth):
    conv = new_conversation(client, staff_auth, pin="2580")
    for _ in range(2):
        response = client.post(
            f"/api/v1/conversations/{conv['id']}/link-mail",
            json={"email": PATIENT_MAIL},
            headers=staff_auth,
        )
        assert response.status_code == 202 and response.json == {"queued": True}
    mails = outbox(client)
    assert [m["link"] for m in mails] == [f"{ORIGIN}p/{conv['patient_token']}"] * 2
    assert link_opens(app, conv)  # sending again made nothing new


def test_a_new_link_replaces_the_kept_one(app, client, staff_auth):
    conv = new_conversation(client, staff_auth, pin="2580")
    medcell = app.extensions["medcell"]
    conn = medcell.store.conn()
    keep = links.keeper(medcell.keyring, medcell.config.facility, conv["id"])
    fresh = patients.reissue(conn, conv["id"], None, keep)
    assert links.current(conn, medcell.keyring, medcell.config.facility, conv["id"]) == fresh
    response = client.post(
        f"/api/v1/conversations/{conv['id']}/link-mail",
        json={"email": PATIENT_MAIL},
        headers=staff_auth,
    )
    assert_error(response, 409)  # the new link has no PIN: not for a mailbox
    assert outbox(client) == []


def test_link_mail_refuses_bad_input_and_queues_nothing(client, staff_auth):
    conv = new_conversation(client, staff_auth, pin="2580")
    url = f"/api/v1/conversations/{conv['id']}/link-mail"
    for body in (
        {"email": "two@a.example, b@c.example"},
        {"email": PATIENT_MAIL, "patient_token": "x" * 43},
        {"email": PATIENT_MAIL, "extra": 1},
        {},
    ):
        assert_error(client.post(url, json=body, headers=staff_auth), 400)
    no_pin = new_conversation(client, staff_auth)
    response = client.post(
        f"/api/v1/conversations/{no_pin['id']}/link-mail",
        json={"email": PATIENT_MAIL},
        headers=staff_auth,
    )
    assert_error(response, 409)
    assert_error(client.post(url, json={"email": PATIENT_MAIL}, headers=conv["patient"]), 403)
    assert outbox(client) == []


def test_the_practice_text_goes_into_the_mail(client, staff_auth, admin_auth):
    assert client.get("/api/v1/link-mail-template", headers=staff_auth).json == {
        "enabled": True,
        "text": None,
        "placeholders": ["{praxis}", "{link}"],
    }
    saved = client.put("/api/v1/link-mail-template", json={"text": TEXT}, headers=admin_auth)
    assert saved.status_code == 200 and saved.json["text"] == TEXT
    conv = new_conversation(client, staff_auth, pin="2580")
    client.post(
        f"/api/v1/conversations/{conv['id']}/link-mail",
        json={"email": PATIENT_MAIL},
        headers=staff_auth,
    )
    (mail,) = outbox(client)
    subject, body = as_mail(mail)  # the relay's own check passes it
    link = f"{ORIGIN}p/{conv['patient_token']}"
    assert body.startswith(f"Guten Tag,\nAlpha schickt Ihnen Ihren Zugang:\n{link}\nBis bald!")
    assert "keine Inhalte" in body  # the relay's footer stays
    assert subject.startswith("Ihr Zugang zu")


@pytest.mark.parametrize(
    "text",
    [
        "Ihr Link: {link} {name}",  # unknown placeholder
        "Kein Link hier, {praxis}",  # {link} missing
        "{link} und nochmal {link}",  # twice
        "Mehr auf https://evil.example/ {link}",  # a web address of its own
        "Besuchen Sie evil.com: {link}",
        "Klammer { offen {link}",
        "Steuer\x1bzeichen {link}",
        "x" * 1001 + "{link}",
        7,
    ],
)
def test_a_bad_practice_text_is_refused_and_the_old_one_kept(client, admin_auth, text):
    client.put("/api/v1/link-mail-template", json={"text": TEXT}, headers=admin_auth)
    response = client.put("/api/v1/link-mail-template", json={"text": text}, headers=admin_auth)
    assert_error(response, 400)
    assert client.get("/api/v1/link-mail-template", headers=admin_auth).json["text"] == TEXT


def test_only_admins_change_the_practice_text_and_null_restores_the_standard(
    client, staff_auth, admin_auth
):
    refused = client.put("/api/v1/link-mail-template", json={"text": TEXT}, headers=staff_auth)
    assert_error(refused, 403)
    client.put("/api/v1/link-mail-template", json={"text": TEXT}, headers=admin_auth)
    reset = client.put("/api/v1/link-mail-template", json={"text": None}, headers=admin_auth)
    assert reset.status_code == 200 and reset.json["text"] is None
    assert_error(client.get("/api/v1/link-mail-template"), 401)


def test_a_patient_who_lost_the_link_gets_it_at_the_address_the_practice_knows(
    app, client, staff_auth
):
    conv = with_address(client, staff_auth)
    ack(client, outbox(client))  # nothing queued by setting the address
    known = request_link(client, "Pat@Mail.example")
    unknown = request_link(client, "nobody@mail.example")
    # The same answer either way: nothing tells whether the practice knows an address.
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json == {"status": "accepted"}
    (mail,) = outbox(client)
    assert mail["to"] == PATIENT_MAIL and mail["kind"] == "patient_link"
    assert mail["link"] == f"{ORIGIN}p/{conv['patient_token']}"
    assert link_opens(app, conv)  # asking for it never ends the patient's access


def test_no_link_is_mailed_for_a_conversation_without_pin(client, staff_auth):
    with_address(client, staff_auth, pin=None)
    assert request_link(client, PATIENT_MAIL).status_code == 202
    assert outbox(client) == []


def test_link_requests_are_limited_per_client_and_per_mailbox(client, staff_auth):
    with_address(client, staff_auth)
    limit, _ = throttle.LINK_REQUEST_LIMIT
    for _ in range(limit):
        assert request_link(client, PATIENT_MAIL).status_code == 202
    refused = request_link(client, PATIENT_MAIL)
    assert_error(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0
    # Another client is not held back; the mailbox gets at most LINK_MAIL_LIMIT links an hour.
    assert request_link(client, PATIENT_MAIL, "198.51.100.9").status_code == 202
    assert len(outbox(client)) == throttle.LINK_MAIL_LIMIT[0]


def test_bad_link_requests_get_the_error_shape_and_queue_nothing(client, staff_auth):
    with_address(client, staff_auth)
    for body in ({"email": "not an address"}, {"email": PATIENT_MAIL, "pin": "1"}, {}):
        response = client.post("/api/v1/link-requests", json=body)
        assert_error(response, 400)
    assert_error(client.post("/api/v1/link-requests", data="x"), 400)
    assert outbox(client) == []


def test_without_mail_the_api_says_so(make_app):
    app = make_app("nomail")
    app.test_client_class = DocumentedClient
    client = app.test_client()
    assert_error(client.post("/api/v1/link-requests", json={"email": PATIENT_MAIL}), 409)
    app.extensions["medcell"].store.close()


def test_the_kept_link_goes_with_its_conversation(app, client, staff_auth):
    conv = new_conversation(client, staff_auth, pin="2580")
    assert db(app).execute("SELECT count(*) FROM patient_links").fetchone()[0] == 1
    assert client.delete(f"/api/v1/conversations/{conv['id']}", headers=staff_auth).status_code in (
        200,
        204,
    )
    assert db(app).execute("SELECT count(*) FROM patient_links").fetchone()[0] == 0

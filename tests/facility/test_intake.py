"""Requests patients start themselves, over the API: the practice's switch and categories, a
request that lands in the team inbox with its link, the limit per client, bad input."""

import pytest

from services.facility.core import throttle

CATEGORIES = ["Rezept", "Überweisung", "Frage zu Befunden"]


def assert_error(response, status: int) -> None:
    assert response.status_code == status
    assert set(response.json) == {"error"} and set(response.json["error"]) == {"code", "message"}


def enable(client, admin_auth, categories=CATEGORIES):
    response = client.put(
        "/api/v1/intake", json={"enabled": True, "categories": categories}, headers=admin_auth
    )
    assert response.status_code == 200, response.json
    return response.json


def ask(client, address: str = "203.0.113.7", **fields):
    body = {"category": "Rezept", "name": "Erika Muster", "body": "Bitte Ibuprofen 400.", **fields}
    return client.post("/api/v1/intake/requests", json=body, environ_base={"REMOTE_ADDR": address})


def test_requests_are_off_until_the_practice_turns_them_on(client, admin_auth):
    assert client.get("/api/v1/intake").json == {"enabled": False, "categories": []}
    assert_error(ask(client), 409)
    assert enable(client, admin_auth) == {"enabled": True, "categories": CATEGORIES}
    assert client.get("/api/v1/intake").json["categories"] == CATEGORIES


def test_a_request_lands_in_the_inbox_as_waiting_with_its_link(client, admin_auth, staff_auth):
    enable(client, admin_auth)
    made = ask(client, birth_date="1970-03-01")
    assert made.status_code == 201
    conv = made.json
    assert conv["patient_url"].endswith(f"/p/{conv['patient_token']}")
    (row,) = client.get("/api/v1/inbox", headers=staff_auth).json["conversations"]
    assert row["id"] == conv["id"] and row["title"] == "Rezept"
    assert row["patient_name"] == "Erika Muster"
    assert row["waiting_since"] is not None and row["unread"] == 1
    assert row["last_message"]["preview"] == "Bitte Ibuprofen 400."
    patient = {"Authorization": f"Bearer {conv['patient_token']}"}
    messages = client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=patient)
    assert [m["author"] for m in messages.json["messages"]] == ["patient"]


@pytest.mark.parametrize(
    "fields",
    [
        {"category": "Krankschreibung"},  # not one of the practice's
        {"name": "  "},
        {"body": "   "},
        {"pin": "12"},
        {"birth_date": "1970-02-30"},
        {"extra": "x"},
    ],
)
def test_bad_requests_get_the_error_shape_and_leave_nothing(client, admin_auth, staff_auth, fields):
    enable(client, admin_auth)
    assert_error(ask(client, **fields), 400)
    assert client.get("/api/v1/inbox", headers=staff_auth).json["conversations"] == []


def test_requests_are_limited_per_client(client, admin_auth):
    enable(client, admin_auth)
    limit, _ = throttle.INTAKE_LIMIT
    for _ in range(limit):
        assert ask(client).status_code == 201
    refused = ask(client)
    assert_error(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert ask(client, "198.51.100.9").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"enabled": True, "categories": []},
        {"enabled": True, "categories": ["Rezept", "rezept"]},
        {"enabled": True, "categories": ["x" * 61]},
        {"enabled": True, "categories": [f"T{n}" for n in range(11)]},
        {"enabled": True, "categories": ["Zeile\nzwei"]},
        {"enabled": "ja", "categories": ["Rezept"]},
    ],
)
def test_bad_settings_are_refused_and_the_old_ones_kept(client, admin_auth, body):
    enable(client, admin_auth)
    assert_error(client.put("/api/v1/intake", json=body, headers=admin_auth), 400)
    assert client.get("/api/v1/intake").json == {"enabled": True, "categories": CATEGORIES}


def test_only_admins_change_the_settings(client, staff_auth):
    refused = client.put(
        "/api/v1/intake", json={"enabled": True, "categories": ["Rezept"]}, headers=staff_auth
    )
    assert_error(refused, 403)

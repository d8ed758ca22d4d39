"""Who may do what: every endpoint against staff, admin, patient, anonymous and outsiders."""

import io

import pytest

from .conftest import STAFF, login

ENDPOINTS = [
    # (method, path template, payload kind, who may) — who: staff, admin, own patient
    ("GET", "/api/v1/conversations", None, {"staff", "admin"}),
    ("POST", "/api/v1/conversations", "json", {"staff", "admin"}),
    ("GET", "/api/v1/conversations/{conv}", None, {"staff", "admin", "patient"}),
    ("GET", "/api/v1/conversations/{conv}/messages", None, {"staff", "admin", "patient"}),
    ("POST", "/api/v1/conversations/{conv}/messages", "json", {"staff", "admin", "patient"}),
    ("POST", "/api/v1/conversations/{conv}/attachments", "file", {"staff", "admin", "patient"}),
    ("GET", "/api/v1/attachments/{att}", None, {"staff", "admin", "patient"}),
    ("GET", "/api/v1/settings", None, {"staff", "admin"}),
    ("PUT", "/api/v1/settings", "json", {"admin"}),
    ("GET", "/api/v1/staff", None, {"admin"}),
    ("POST", "/api/v1/staff", "json", {"admin"}),
    ("DELETE", "/api/v1/staff/nobody", None, {"admin"}),
    ("DELETE", "/api/v1/conversations", None, {"admin"}),
]
PAYLOADS = {
    "/api/v1/settings": {"retention": "7d"},
    "/api/v1/staff": {"username": "extra"},
    "/api/v1/conversations": {"title": "t"},
}


@pytest.fixture
def world(client, make_app, staff_auth, admin_auth, conversation):
    """Two conversations in this facility, plus tokens minted by another facility's database."""
    other = client.post("/api/v1/conversations", json={"title": "other"}, headers=staff_auth).json
    att = client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data={"file": (io.BytesIO(b"%PDF-1.4 data"), "a.pdf")},
        headers=staff_auth,
    ).json
    foreign_app = make_app("beta")
    foreign = foreign_app.test_client()
    foreign_staff = login(foreign, *STAFF)
    foreign_conv = foreign.post("/api/v1/conversations", json={}, headers=foreign_staff).json
    return {
        "conv": conversation,
        "att": att,
        "callers": {
            "staff": staff_auth,
            "admin": admin_auth,
            "patient": conversation["patient"],
            "other patient": {"Authorization": f"Bearer {other['patient_token']}"},
            "anonymous": {},
            "foreign staff": foreign_staff,
            "foreign patient": {"Authorization": f"Bearer {foreign_conv['patient_token']}"},
        },
    }


def call(client, method, template, kind, world, headers):
    path = template.format(conv=world["conv"]["id"], att=world["att"]["id"])
    kwargs = {"headers": headers}
    if kind == "json":
        kwargs["json"] = PAYLOADS.get(template, {"body": "hello"})
    elif kind == "file":
        kwargs["data"] = {"file": (io.BytesIO(b"f"), "f.txt")}
    return client.open(path, method=method, **kwargs)


@pytest.mark.parametrize(
    "method,template,kind,allowed", ENDPOINTS, ids=[f"{m} {t}" for m, t, _, _ in ENDPOINTS]
)
def test_authorization_matrix(client, world, method, template, kind, allowed):
    for caller, headers in world["callers"].items():
        response = call(client, method, template, kind, world, headers)
        if caller in allowed:
            # Allowed callers get past authorization; the answer may still be a 400 or 404.
            assert response.status_code not in (401, 403), (caller, response.status_code)
        elif caller in ("anonymous", "foreign staff", "foreign patient"):
            assert response.status_code == 401, (caller, response.status_code)
        elif caller == "other patient":
            assert response.status_code in (403, 404), (caller, response.status_code)
        else:
            assert response.status_code == 403, (caller, response.status_code)
        if response.status_code >= 400:
            assert set(response.json["error"]) == {"code", "message"}


def test_patient_cannot_read_other_conversation(client, world):
    other_patient = world["callers"]["other patient"]
    response = client.get(
        f"/api/v1/conversations/{world['conv']['id']}/messages", headers=other_patient
    )
    assert response.status_code == 404
    response = client.get(f"/api/v1/attachments/{world['att']['id']}", headers=other_patient)
    assert response.status_code == 404


def test_patient_cannot_list_conversations_or_delete_everything(client, world):
    patient = world["callers"]["patient"]
    assert client.get("/api/v1/conversations", headers=patient).status_code == 403
    assert client.delete("/api/v1/conversations?confirm=alpha", headers=patient).status_code == 403


def test_public_endpoints_need_no_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


@pytest.mark.parametrize(
    "caller,status",
    [
        ("staff", 200),
        ("admin", 200),
        ("patient", 200),
        ("other patient", 404),
        ("anonymous", 401),
        ("foreign staff", 401),
        ("foreign patient", 401),
    ],
)
def test_who_may_delete_a_conversation(client, world, caller, status):
    response = client.delete(
        f"/api/v1/conversations/{world['conv']['id']}", headers=world["callers"][caller]
    )
    assert response.status_code == status
    still_there = (
        client.get(
            f"/api/v1/conversations/{world['conv']['id']}", headers=world["callers"]["staff"]
        ).status_code
        == 200
    )
    assert still_there == (status != 200)

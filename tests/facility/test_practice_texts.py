"""Quick replies and the facility's contact over the API."""


def test_admins_add_quick_replies_and_staff_read_them(client, admin_auth, staff_auth):
    created = client.post(
        "/api/v1/quick-replies",
        json={"label": "Befund da", "body": "Ihr Befund ist da. Bitte rufen Sie uns an."},
        headers=admin_auth,
    )
    assert created.status_code == 201
    listed = client.get("/api/v1/quick-replies", headers=staff_auth).json["quick_replies"]
    assert listed == [created.json]
    assert (
        client.delete(f"/api/v1/quick-replies/{created.json['id']}", headers=admin_auth).status_code
        == 204
    )
    assert client.get("/api/v1/quick-replies", headers=staff_auth).json["quick_replies"] == []


def test_quick_replies_refuse_bad_input_and_store_nothing(client, admin_auth, staff_auth):
    for body in (
        {"label": "", "body": "x"},
        {"label": "x", "body": "   "},
        {"label": "x", "body": "y", "extra": 1},
        {"label": 5, "body": "y"},
    ):
        response = client.post("/api/v1/quick-replies", json=body, headers=admin_auth)
        assert response.status_code == 400, body
    long = client.post(
        "/api/v1/quick-replies", json={"label": "x", "body": "y" * 10001}, headers=admin_auth
    )
    assert long.status_code == 400
    assert client.get("/api/v1/quick-replies", headers=admin_auth).json["quick_replies"] == []


def test_only_admins_change_quick_replies(client, staff_auth, conversation):
    body = {"label": "a", "body": "b"}
    assert client.post("/api/v1/quick-replies", json=body, headers=staff_auth).status_code == 403
    patient = conversation["patient"]
    assert client.get("/api/v1/quick-replies", headers=patient).status_code == 403
    assert client.delete("/api/v1/quick-replies/1", headers=staff_auth).status_code == 403


def test_at_most_fifty_quick_replies(client, admin_auth):
    for i in range(50):
        body = {"label": f"t{i}", "body": "text"}
        assert (
            client.post("/api/v1/quick-replies", json=body, headers=admin_auth).status_code == 201
        )
    full = client.post(
        "/api/v1/quick-replies", json={"label": "z", "body": "z"}, headers=admin_auth
    )
    assert full.status_code == 409


def test_contact_is_public_and_set_by_admins(client, admin_auth, staff_auth):
    assert client.get("/api/v1/contact").json == {"phone": "", "hours": ""}
    new = {"phone": "+49 30 1234567", "hours": "Mo–Fr 8–12 Uhr"}
    assert client.put("/api/v1/contact", json=new, headers=staff_auth).status_code == 403
    assert client.put("/api/v1/contact", json=new, headers=admin_auth).json == new
    assert client.get("/api/v1/contact").json == new
    cleared = client.put("/api/v1/contact", json={"hours": ""}, headers=admin_auth)
    assert cleared.json == {"phone": "+49 30 1234567", "hours": ""}


def test_contact_refuses_what_a_patient_could_not_dial(client, admin_auth):
    for body in ({"phone": "call me maybe"}, {"email": "a@b.c"}):
        assert client.put("/api/v1/contact", json=body, headers=admin_auth).status_code == 400
    # A text over its documented maxLength is a validation error, as everywhere in the API.
    too_long = client.put("/api/v1/contact", json={"hours": "x" * 301}, headers=admin_auth)
    assert too_long.status_code == 400
    assert client.get("/api/v1/contact").json == {"phone": "", "hours": ""}

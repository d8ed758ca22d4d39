"""Admins deactivate, reactivate and reset other staff accounts."""

from .conftest import STAFF, login


def test_deactivating_ends_the_sessions_and_refuses_login(client, admin_auth, staff_auth):
    assert client.get("/api/v1/me", headers=staff_auth).status_code == 200
    response = client.post(f"/api/v1/staff/{STAFF[0]}/deactivate", headers=admin_auth)
    assert response.status_code == 204
    assert client.get("/api/v1/me", headers=staff_auth).status_code == 401
    refused = client.post("/api/v1/login", json={"username": STAFF[0], "password": STAFF[1]})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "account_disabled"
    listed = client.get("/api/v1/staff", headers=admin_auth).json["staff"]
    assert {s["username"]: s["active"] for s in listed} == {"admin": True, STAFF[0]: False}


def test_a_deactivated_account_with_a_wrong_password_looks_like_any_wrong_login(client, admin_auth):
    client.post(f"/api/v1/staff/{STAFF[0]}/deactivate", headers=admin_auth)
    response = client.post("/api/v1/login", json={"username": STAFF[0], "password": "nope"})
    assert response.status_code == 401


def test_reactivating_lets_the_account_log_in_again(client, admin_auth):
    client.post(f"/api/v1/staff/{STAFF[0]}/deactivate", headers=admin_auth)
    assert (
        client.post(f"/api/v1/staff/{STAFF[0]}/reactivate", headers=admin_auth).status_code == 204
    )
    assert client.get("/api/v1/me", headers=login(client, *STAFF)).json["username"] == STAFF[0]


def test_password_reset_gives_a_new_password_once_and_ends_sessions(client, admin_auth, staff_auth):
    response = client.post(f"/api/v1/staff/{STAFF[0]}/password-reset", headers=admin_auth)
    assert response.status_code == 200
    new = response.json["password"]
    assert response.json["username"] == STAFF[0] and len(new) >= 12
    assert client.get("/api/v1/me", headers=staff_auth).status_code == 401
    old = client.post("/api/v1/login", json={"username": STAFF[0], "password": STAFF[1]})
    assert old.status_code == 401
    # The new one is right, but its owner must first replace it on the sign-in page.
    first = client.post("/api/v1/login", json={"username": STAFF[0], "password": new})
    assert first.status_code == 403 and first.json["error"]["code"] == "password_change_required"


def test_admins_cannot_lock_themselves_out(client, admin_auth):
    assert client.post("/api/v1/staff/admin/deactivate", headers=admin_auth).status_code == 409
    assert client.post("/api/v1/staff/admin/password-reset", headers=admin_auth).status_code == 409
    assert client.get("/api/v1/me", headers=admin_auth).status_code == 200


def test_only_admins_manage_accounts_and_unknown_accounts_are_404(client, admin_auth, staff_auth):
    assert client.post("/api/v1/staff/admin/deactivate", headers=staff_auth).status_code == 403
    assert client.post("/api/v1/staff/admin/password-reset", headers=staff_auth).status_code == 403
    assert client.post("/api/v1/staff/nobody/deactivate", headers=admin_auth).status_code == 404

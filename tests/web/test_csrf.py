"""CSRF: every form post and every cookie-authenticated API call needs the session's token."""

import pytest

from .conftest import BASE, browser, csrf_of, open_conversation


def test_form_post_without_or_with_a_foreign_token_is_refused(app, staff, admin):
    conv_id, _ = open_conversation(staff)
    url = f"{BASE}/staff/c/{conv_id}/messages"
    assert staff.post(url, data={"body": "no token"}).status_code == 403
    foreign = csrf_of(admin.get(f"{BASE}/staff/"))
    refused = staff.post(url, data={"body": "admin's token", "csrf": foreign})
    assert refused.status_code == 403
    assert "Formular ist abgelaufen" in refused.get_data(as_text=True)
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/staff/conversations",
        "/logout",
        "/staff/admin/wipe",
        "/staff/admin/retention",
        "/staff/admin/accounts",
        "/staff/password",
    ],
)
def test_every_staff_form_checks_the_token(admin, path):
    assert (
        admin.post(f"{BASE}{path}", data={"confirm": "praxis", "retention": "1d"}).status_code
        == 403
    )


def test_patient_forms_check_the_token(app, staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    for path in ("/patient/messages", "/patient/delete", "/patient/leave"):
        assert patient.post(f"{BASE}{path}", data={"body": "x"}).status_code == 403
    assert patient.get(f"{BASE}/patient/").status_code == 200, "the conversation is still there"


def test_login_form_needs_its_pre_session_token(app):
    client = browser(app)
    refused = client.post(
        f"{BASE}/login", data={"username": "pfleger", "password": "another long secret"}
    )
    assert refused.status_code == 403
    assert client.get_cookie("__Host-mc_staff", domain="medcell.test") is None


def test_cookie_alone_does_not_authenticate_api_writes(app, staff):
    conv_id, _ = open_conversation(staff)
    url = f"{BASE}/api/v1/conversations/{conv_id}/messages"
    assert staff.post(url, json={"body": "forged"}).status_code == 401
    assert staff.delete(f"{BASE}/api/v1/conversations/{conv_id}").status_code == 401
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    token = csrf_of(page)
    sent = staff.post(url, json={"body": "from the page"}, headers={"X-CSRF-Token": token})
    assert sent.status_code == 201 and sent.json["author"] == "staff"


def test_api_logout_ends_the_cookie_session_of_the_page(staff):
    token = csrf_of(staff.get(f"{BASE}/staff/"))
    out = staff.post(f"{BASE}/api/v1/logout", headers={"X-CSRF-Token": token})
    assert out.status_code == 204
    # The same cookie and CSRF token no longer open anything, in the API or the pages.
    me = staff.get(f"{BASE}/api/v1/me", headers={"X-CSRF-Token": token})
    assert me.status_code == 401
    assert staff.get(f"{BASE}/staff/").status_code in (302, 303)

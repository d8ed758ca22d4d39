"""Opening a patient link: the token becomes a session cookie and leaves the address bar."""

import re

from .conftest import BASE, browser, csrf_of, open_conversation


def test_link_is_exchanged_for_a_cookie_and_a_redirect_without_the_token(app, staff, patient):
    _, link = open_conversation(staff)
    token = link.rsplit("/", 1)[1]
    response = patient.get(BASE + link)
    assert response.status_code == 303
    assert response.headers["Location"] == "/patient/#newest"
    assert token not in response.headers["Location"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-mc_patient=")
    assert token not in cookie, "the link's token itself must never become the cookie"
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    page = patient.get(f"{BASE}/patient/")
    assert page.status_code == 200
    assert "Ihre Unterhaltung mit Praxis Sonnenschein" in page.get_data(as_text=True)
    assert "Knie" not in page.get_data(as_text=True), "the staff's title is not for the patient"


# What ProxyFix once trusted; through the gateway a Host it does not serve never arrives (421).
FORGED = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Prefix": "/f/other",
    "X-Forwarded-Proto": "https",
}


def test_a_forged_host_never_changes_the_patient_link(app, staff):
    home = staff.get(f"{BASE}/staff/", headers=FORGED)
    page = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "Knie", "pin": "", "csrf": csrf_of(home)},
        headers=FORGED,
    )
    html = page.get_data(as_text=True)
    assert "evil" not in html and "/f/other" not in html
    link = re.search(r'id="link" type="text" readonly value="([^"]+)"', html).group(1)
    assert link.startswith(f"{BASE}/p/")


def test_the_cookie_is_host_only_at_the_root_whatever_the_prefix_header(app, staff, patient):
    _, link = open_conversation(staff)
    response = patient.get(BASE + link, headers=FORGED)
    assert response.headers["Location"] == "/patient/#newest"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-mc_patient=") and "; Path=/;" in cookie
    assert "domain" not in cookie.lower()


def test_unknown_link_gives_a_clear_page(patient):
    response = patient.get(f"{BASE}/p/{'x' * 43}")
    assert response.status_code == 404
    assert "Link ungültig" in response.get_data(as_text=True)


def test_without_a_session_the_page_reloads_once_then_explains(patient):
    first = patient.get(f"{BASE}/patient/")
    assert first.status_code == 200
    assert 'http-equiv="refresh"' in first.get_data(as_text=True)
    second = patient.get(f"{BASE}/patient/?retry=1")
    assert second.status_code == 401
    assert "Sitzung" in second.get_data(as_text=True)


def test_patient_session_reads_through_the_api_only_with_its_csrf_token(app, staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    page = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    csrf = page.split('data-csrf="')[1].split('"')[0]
    url = f"{BASE}/api/v1/conversations/{conv_id}/messages"
    assert patient.get(url).status_code == 401
    assert patient.get(url, headers={"X-CSRF-Token": "wrong"}).status_code == 401
    ok = patient.get(url, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json["messages"] == []


def test_opening_the_link_again_replaces_the_old_session(app, staff):
    _, link = open_conversation(staff)
    phone = browser(app)
    phone.get(BASE + link)
    first = phone.get_cookie("__Host-mc_patient", domain="medcell.test").value
    phone.get(BASE + link)
    assert phone.get_cookie("__Host-mc_patient", domain="medcell.test").value != first
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM patient_sessions").fetchone()[0] == 1


def test_a_link_does_not_replace_another_conversation_without_asking(app, staff, patient):
    # Someone sends a patient the link of a conversation of their own (login CSRF): the
    # patient's own conversation stays open until they confirm, with this site's form.
    mine, own_link = open_conversation(staff, "Knie")
    theirs, other_link = open_conversation(staff, "Fremd")
    assert patient.get(BASE + own_link).status_code == 303
    asked = patient.get(BASE + other_link)
    assert asked.status_code == 200
    assert "Andere Unterhaltung öffnen?" in asked.get_data(as_text=True)
    assert "Set-Cookie" not in asked.headers or "mc_patient" not in asked.headers["Set-Cookie"]
    assert conversation_of(patient) == mine
    assert patient.post(BASE + other_link, data={"csrf": "forged"}).status_code == 403
    assert conversation_of(patient) == mine
    switched = patient.post(BASE + other_link, data={"csrf": csrf_of(asked)})
    assert switched.status_code == 303 and switched.headers["Location"] == "/patient/#newest"
    assert conversation_of(patient) == theirs


def test_a_link_opened_by_signed_in_staff_asks_first(app, staff):
    _, link = open_conversation(staff)
    asked = staff.get(BASE + link)
    assert asked.status_code == 200
    assert "als Mitarbeiter/in angemeldet" in asked.get_data(as_text=True)
    assert staff.get(f"{BASE}/patient/?retry=1").status_code == 401  # no patient session yet


def test_a_link_from_another_site_is_reloaded_from_this_one_before_it_is_traded(app, staff):
    # Such a navigation carries no SameSite=Strict cookie, so it could not see a session.
    _, link = open_conversation(staff)
    fresh = browser(app)
    first = fresh.get(BASE + link, headers={"Sec-Fetch-Site": "cross-site"})
    assert first.status_code == 200 and 'http-equiv="refresh"' in first.get_data(as_text=True)
    assert "mc_patient" not in first.headers.get("Set-Cookie", "")
    again = fresh.get(BASE + link + "?retry=1", headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 303


def conversation_of(client) -> str:
    page = client.get(f"{BASE}/patient/").get_data(as_text=True)
    return page.split("/api/v1/conversations/")[1].split("/")[0]

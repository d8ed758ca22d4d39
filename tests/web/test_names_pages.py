"""Names on messages in the pages: the colleague's display name instead of "Sie" for everyone,
the patient's access log by name; setting one's own name and an admin renaming an account."""

import re

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in, open_conversation


def write(client, conv_id: str, body: str) -> None:
    page = client.get(f"{BASE}/staff/c/{conv_id}")
    sent = client.post(
        f"{BASE}/staff/c/{conv_id}/messages", data={"body": body, "csrf": csrf_of(page)}
    )
    assert sent.status_code == 303


def set_own_name(client, name: str):
    page = client.get(f"{BASE}/staff/password")
    return client.post(f"{BASE}/staff/name", data={"name": name, "csrf": csrf_of(page)})


def labels(html: str) -> list[tuple[str, str]]:
    """(who, text) of each message on a conversation page."""
    return re.findall(r'<span class="who">([^<]*)</span>.*?<p class="body">([^<]*)</p>', html, re.S)


def test_each_staff_message_shows_its_writer_and_only_the_readers_own_say_sie(app, staff):
    assert set_own_name(staff, "Pfleger Tom").status_code == 200
    admin = browser(app)
    log_in(admin, *ADMIN)
    assert set_own_name(admin, "Dr. Anna Berg").status_code == 200
    conv_id, link = open_conversation(staff, "Knie")
    write(staff, conv_id, "Von Tom")
    write(admin, conv_id, "Von Anna")
    assert labels(staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)) == [
        ("Sie", "Von Tom"),
        ("Dr. Anna Berg", "Von Anna"),
    ]
    assert labels(admin.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)) == [
        ("Pfleger Tom", "Von Tom"),
        ("Sie", "Von Anna"),
    ]
    patient = browser(app)
    html = patient.get(BASE + link, follow_redirects=True).get_data(as_text=True)
    assert labels(html) == [
        ("Pfleger Tom, Praxis Sonnenschein", "Von Tom"),
        ("Dr. Anna Berg, Praxis Sonnenschein", "Von Anna"),
    ]
    # The page's script labels new messages the same way.
    assert 'data-label-named="{name}, Praxis Sonnenschein"' in html


def test_the_patients_access_log_names_the_colleague_not_the_login(app, staff):
    set_own_name(staff, "Pfleger Tom")
    conv_id, link = open_conversation(staff)
    staff.get(f"{BASE}/staff/c/{conv_id}")
    html = browser(app).get(BASE + link, follow_redirects=True).get_data(as_text=True)
    log = re.search(r'<ul class="access-log">.*?</ul>', html, re.S).group(0)
    assert "Pfleger Tom hat die Unterhaltung geöffnet" in log and STAFF[0] not in log


def test_a_bad_own_name_is_refused_and_kept_in_the_form(staff):
    refused = set_own_name(staff, "Zeile\neins")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "in einer Zeile, ohne Steuerzeichen" in html
    assert 'value="Zeile' in html
    page = staff.get(f"{BASE}/staff/password").get_data(as_text=True)
    assert 'id="name" name="name"' in page and f'value="{STAFF[0]}"' in page


def test_the_admin_names_a_new_account_and_renames_another(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    added = admin.post(
        f"{BASE}/staff/admin/accounts",
        data={
            "csrf": csrf_of(page),
            "username": "mfa",
            "display_name": "Mara (Empfang)",
            "role": "staff",
        },
    )
    assert added.status_code == 201
    listed = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert '<span class="name">Mara (Empfang)</span> <span class="login">(mfa)</span>' in listed
    renamed = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/name",
        data={"csrf": csrf_of(page), "name": "Tom Berger"},
    )
    assert renamed.status_code == 200 and "Tom Berger" in renamed.get_data(as_text=True)
    refused = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/name", data={"csrf": csrf_of(page), "name": " "}
    )
    assert refused.status_code == 400
    assert "Tom Berger" in admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    bad_new = admin.post(
        f"{BASE}/staff/admin/accounts",
        data={"csrf": csrf_of(page), "username": "x1", "display_name": "a\tb", "role": "staff"},
    )
    assert bad_new.status_code == 400
    assert "(x1)" not in admin.get(f"{BASE}/staff/admin").get_data(as_text=True)


def test_a_staff_member_cannot_rename_colleagues_through_the_admin_route(app, staff):
    page = staff.get(f"{BASE}/staff/password")
    response = staff.post(
        f"{BASE}/staff/admin/accounts/{ADMIN[0]}/name", data={"csrf": csrf_of(page), "name": "X"}
    )
    assert response.status_code == 403


def test_names_speak_english_too(app, staff):
    set_own_name(staff, "Nurse Tom")
    conv_id, link = open_conversation(staff)
    write(staff, conv_id, "Hello")
    patient = browser(app)
    patient.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = patient.get(BASE + link, follow_redirects=True).get_data(as_text=True)
    assert labels(html) == [("Nurse Tom, Praxis Sonnenschein", "Hello")]
    english = staff.get(f"{BASE}/staff/password?lang=en").get_data(as_text=True)
    assert "Your name in the team" in english

"""Admins manage quick replies and the contact; staff insert quick replies; patients see the contact
where they are stuck."""

import re

from .conftest import BASE, browser, csrf_of, open_conversation


def add_quick_reply(admin, label: str, body: str):
    page = admin.get(f"{BASE}/staff/admin")
    return admin.post(
        f"{BASE}/staff/admin/quick-replies",
        data={"csrf": csrf_of(page), "label": label, "body": body},
    )


def set_contact(admin, phone: str, hours: str):
    page = admin.get(f"{BASE}/staff/admin")
    return admin.post(
        f"{BASE}/staff/admin/contact", data={"csrf": csrf_of(page), "phone": phone, "hours": hours}
    )


def test_a_quick_reply_is_offered_in_the_compose_form_and_fills_it_without_script(
    app, admin, staff
):
    assert (
        add_quick_reply(admin, "Termin", "Bitte vereinbaren Sie einen Termin.").status_code == 303
    )
    assert "Termin" in admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    conv_id, _ = open_conversation(staff)
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    reply_id = re.search(r'<option value="(\d+)" data-text="[^"]*">Termin</option>', html).group(1)
    filled = staff.get(f"{BASE}/staff/c/{conv_id}?quick={reply_id}").get_data(as_text=True)
    assert ">Bitte vereinbaren Sie einen Termin.</textarea>" in filled
    # Nothing is sent until staff press "Senden".
    assert 'class="msg ' not in filled


def test_patients_never_see_the_quick_replies(app, admin, staff, patient):
    add_quick_reply(admin, "Intern", "Nur für das Team")
    _, link = open_conversation(staff)
    html = patient.get(BASE + link, follow_redirects=True).get_data(as_text=True)
    assert "Nur für das Team" not in html and 'id="quick-form"' not in html


def test_bad_quick_reply_explains_itself(app, admin):
    response = add_quick_reply(admin, "", "text")
    assert response.status_code == 400 and "dürfen nicht leer sein" in response.get_data(
        as_text=True
    )


def test_contact_shows_on_the_invalid_link_page_and_the_pin_page(app, admin, staff):
    assert set_contact(admin, "030 123 456", "Mo–Fr 8–12 Uhr").status_code == 200
    invalid = browser(app).get(f"{BASE}/p/{'x' * 43}")
    html = invalid.get_data(as_text=True)
    assert invalid.status_code == 404
    assert 'href="tel:030123456">030 123 456</a>' in html and "Mo–Fr 8–12 Uhr" in html
    _, link = open_conversation(staff, pin="4711")
    pin_page = browser(app).get(BASE + link, follow_redirects=True).get_data(as_text=True)
    assert "Bitte geben Sie die PIN" in pin_page or 'name="pin"' in pin_page
    assert "030 123 456" in pin_page


def test_contact_shows_when_the_link_is_locked(app, admin, staff):
    set_contact(admin, "+49 30 999", "")
    _, link = open_conversation(staff, pin="4711")
    patient = browser(app)
    for _ in range(6):
        page = patient.get(BASE + link, follow_redirects=True)
        if "gesperrt" in page.get_data(as_text=True):
            break
        patient.post(f"{BASE}/patient/pin", data={"csrf": csrf_of(page), "pin": "0000"})
    locked = patient.get(BASE + link)
    assert locked.status_code == 403 and "+49 30 999" in locked.get_data(as_text=True)


def test_without_a_contact_the_pages_show_none(app):
    html = browser(app).get(f"{BASE}/p/{'x' * 43}").get_data(as_text=True)
    assert "So erreichen Sie" not in html


def test_a_bad_phone_number_is_refused_and_nothing_changes(app, admin):
    set_contact(admin, "030 1", "Mo")
    bad = set_contact(admin, "ruf mich an", "Di")
    assert bad.status_code == 400
    html = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert 'value="030 1"' in html and ">Mo</textarea>" in html

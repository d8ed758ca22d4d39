"""The pages for the patient's link: the letter with its QR code, mailing the same link again,
the confirmation before a new link, the practice's mail text, the lost-link page, and what the
pages say where no mail is set up."""

import re

import pytest

from services.facility.core import links

from .conftest import BASE, STAFF, browser, csrf_of, log_in, make_praxis, open_conversation


@pytest.fixture
def app(tmp_path, clock):
    app = make_praxis(tmp_path, clock, mail=True)
    yield app
    app.extensions["medcell"].store.close()


@pytest.fixture
def plain(tmp_path, clock):
    """The practice where the installation has no mail set up."""
    app = make_praxis(tmp_path / "plain", clock)
    yield app
    app.extensions["medcell"].store.close()


def queued(app) -> list[dict]:
    medcell = app.extensions["medcell"]
    return medcell.notifier.take(medcell.store.conn())


def opens(client, link: str) -> bool:
    return client.get(f"{BASE}{link}").status_code == 303


def test_the_letter_holds_the_same_link_and_its_qr_code(staff, patient):
    conv_id, link = open_conversation(staff, pin="2580")
    page = staff.get(f"{BASE}/staff/c/{conv_id}/letter")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"{BASE}{link}" in html and "<svg" in html
    assert "Ihr Zugang zur Unterhaltung mit Praxis Sonnenschein" in html
    assert "PIN" in html and "2580" not in html
    assert f"Unter {BASE}/link-lost können Sie ihn erneut anfordern" in html
    english = staff.get(f"{BASE}/staff/c/{conv_id}/letter?lang=en").get_data(as_text=True)
    assert "Your access to the conversation with Praxis Sonnenschein" in english
    assert opens(patient, link), "printing the letter leaves the link as it was"


def test_the_conversation_mails_the_same_link_again(app, staff, patient):
    conv_id, link = open_conversation(staff, pin="2580")
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    html = page.get_data(as_text=True)
    assert "Link erneut per E-Mail senden" in html
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/link-mail",
        data={"email": "pat@mail.example", "csrf": csrf_of(page)},
    )
    assert sent.status_code == 202
    (mail,) = queued(app)
    assert mail["link"] == f"{BASE}{link}"
    assert opens(patient, link)


def test_a_bad_address_on_the_conversation_keeps_the_page(app, staff):
    conv_id, _ = open_conversation(staff, pin="2580")
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/link-mail",
        data={"email": "a@b.example, c@d.example", "csrf": csrf_of(page)},
    )
    assert refused.status_code == 400
    assert "genau eine E-Mail-Adresse" in refused.get_data(as_text=True)
    assert queued(app) == []


def test_a_new_link_needs_its_confirmation(staff, patient):
    conv_id, link = open_conversation(staff, pin="2580")
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    assert f'href="/staff/c/{conv_id}/link"' in page.get_data(as_text=True)
    confirm = staff.get(f"{BASE}/staff/c/{conv_id}/link")
    assert confirm.status_code == 200
    assert "Ja, neuen Link erstellen" in confirm.get_data(as_text=True)
    # A post without the confirmation (an old form, a stray click) changes nothing.
    unconfirmed = staff.post(
        f"{BASE}/staff/c/{conv_id}/link", data={"pin": "1357", "csrf": csrf_of(confirm)}
    )
    assert unconfirmed.status_code == 400
    assert opens(patient, link)
    made = staff.post(
        f"{BASE}/staff/c/{conv_id}/link",
        data={"pin": "1357", "confirm": "yes", "csrf": csrf_of(confirm)},
    )
    assert made.status_code == 200
    fresh = re.search(
        r'id="link" type="text" readonly value="https://medcell.test([^"]+)"',
        made.get_data(as_text=True),
    ).group(1)
    assert not opens(browser(patient.application), link), "the old link ended"
    letter = staff.get(f"{BASE}/staff/c/{conv_id}/letter").get_data(as_text=True)
    assert f"{BASE}{fresh}" in letter and f"{BASE}{link}" not in letter


def test_a_bad_pin_on_the_confirmation_keeps_the_old_link(staff, patient):
    conv_id, link = open_conversation(staff)
    confirm = staff.get(f"{BASE}/staff/c/{conv_id}/link")
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/link",
        data={"pin": "12", "confirm": "yes", "csrf": csrf_of(confirm)},
    )
    assert refused.status_code == 400
    assert opens(patient, link)


def test_without_mail_the_pages_say_so(plain):
    staff = browser(plain)
    log_in(staff, *STAFF)
    conv_id, _ = open_conversation(staff, pin="2580")
    for path in (f"/staff/c/{conv_id}", "/link-lost"):
        html = staff.get(f"{BASE}{path}").get_data(as_text=True)
        assert "kein E-Mail-Versand eingerichtet" in html or "keine E-Mails" in html, path
    created = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "x", "pin": "", "csrf": csrf_of(staff.get(f"{BASE}/staff/"))},
    )
    assert "kein E-Mail-Versand eingerichtet" in created.get_data(as_text=True)
    assert "Brief mit QR-Code drucken" in created.get_data(as_text=True)


def test_the_admin_edits_the_link_mail_text(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    assert "Text der Link-E-Mail" in page.get_data(as_text=True)
    bad = admin.post(
        f"{BASE}/staff/admin/link-mail-template",
        data={"text": "Hallo {name}, {link}", "csrf": csrf_of(page)},
    )
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "nur die Platzhalter {praxis} und {link}" in html
    assert "Hallo {name}, {link}</textarea>" in html, "what was typed stays in the field"
    good = admin.post(
        f"{BASE}/staff/admin/link-mail-template",
        data={"text": "Hallo, {praxis} schickt: {link}", "csrf": csrf_of(page)},
    )
    assert good.status_code == 200 and "gespeichert" in good.get_data(as_text=True)
    medcell = app.extensions["medcell"]
    assert links.template(medcell.store.conn()) == "Hallo, {praxis} schickt: {link}"


def test_staff_who_are_not_admins_cannot_change_the_text(staff):
    page = staff.get(f"{BASE}/staff/")
    refused = staff.post(
        f"{BASE}/staff/admin/link-mail-template",
        data={"text": "{link}", "csrf": csrf_of(page)},
    )
    assert refused.status_code == 403


def patient_sets_address(staff, patient, email: str) -> str:
    conv_id, link = open_conversation(staff, pin="2580")
    patient.get(f"{BASE}{link}")
    pin_page = patient.get(f"{BASE}/patient/pin")
    patient.post(f"{BASE}/patient/pin", data={"pin": "2580", "csrf": csrf_of(pin_page)})
    page = patient.get(f"{BASE}/patient/")
    saved = patient.post(
        f"{BASE}/patient/notifications",
        data={"email": email, "action": "on", "csrf": csrf_of(page)},
    )
    assert saved.status_code == 303
    return link


def ask(client, email: str):
    page = client.get(f"{BASE}/link-lost")
    return client.post(f"{BASE}/link-lost", data={"email": email, "csrf": csrf_of(page)})


def test_the_lost_link_page_answers_the_same_for_any_address(app, staff, patient):
    link = patient_sets_address(staff, patient, "pat@mail.example")
    queued(app)  # nothing waiting before
    stranger = browser(app)
    known, unknown = ask(stranger, "pat@mail.example"), ask(stranger, "x@mail.example")
    assert known.status_code == unknown.status_code == 303
    assert known.location == unknown.location
    done = stranger.get(known.location).get_data(as_text=True)
    assert "Wenn Ihre Praxis diese Adresse kennt, sendet sie Ihnen einen neuen Link." in done
    (mail,) = queued(app)
    assert mail["to"] == "pat@mail.example" and mail["link"] == f"{BASE}{link}"


def test_the_lost_link_page_refuses_a_bad_address_and_too_many_requests(app):
    client = browser(app)
    bad = ask(client, "kein Name")
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    for _ in range(4):
        assert ask(client, "a@mail.example").status_code == 303
    limited = ask(client, "a@mail.example")
    assert limited.status_code == 429 and "Zu viele Anfragen" in limited.get_data(as_text=True)
    assert int(limited.headers["Retry-After"]) > 0


def test_a_stuck_patient_finds_the_lost_link_page(app, patient):
    dead = patient.get(f"{BASE}/p/{'x' * 43}")
    assert 'href="/link-lost"' in dead.get_data(as_text=True)

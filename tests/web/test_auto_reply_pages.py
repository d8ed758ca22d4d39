"""The admin switches the automatic reply on and writes its text on the admin page."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in, open_conversation
from .test_practice_pages import set_contact


def card(html: str) -> str:
    return re.search(r'<section class="card" aria-labelledby="auto-h">.*?</section>', html, re.S)[0]


def save(admin, **fields):
    page = admin.get(f"{BASE}/staff/admin")
    return admin.post(f"{BASE}/staff/admin/auto-reply", data={"csrf": csrf_of(page), **fields})


def test_the_admin_switches_it_on_with_a_text(app, admin):
    set_contact(admin, "030 123 456", "Mo–Fr 8–12 Uhr")
    saved = save(admin, enabled="on", text="Wir melden uns ab 8 Uhr.")
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith("/staff/admin?auto=saved#auto-h")
    html = card(admin.get(f"{BASE}/staff/admin?auto=saved").get_data(as_text=True))
    assert "Die automatische Antwort wurde gespeichert." in html
    assert re.search(r'id="auto-enabled" name="enabled" checked', html)
    assert ">Wir melden uns ab 8 Uhr.</textarea>" in html
    assert "nennen keine Uhrzeiten" not in html


def test_hours_without_times_are_pointed_out(app, admin):
    set_contact(admin, "030 123 456", "nach Vereinbarung")
    html = card(admin.get(f"{BASE}/staff/admin").get_data(as_text=True))
    assert "Die Sprechzeiten nennen keine Uhrzeiten" in html


def test_switched_on_without_text_is_refused_and_the_form_kept(app, admin):
    refused = save(admin, enabled="on", text="  ")
    assert refused.status_code == 400
    html = card(refused.get_data(as_text=True))
    assert 'role="alert"' in html and 'aria-invalid="true"' in html
    assert re.search(r'id="auto-enabled" name="enabled" checked', html)
    shown = card(admin.get(f"{BASE}/staff/admin").get_data(as_text=True))
    assert "checked" not in shown


def test_staff_cannot_change_it(app, staff):
    page = staff.get(f"{BASE}/staff/")
    refused = staff.post(
        f"{BASE}/staff/admin/auto-reply", data={"csrf": csrf_of(page), "enabled": "on", "text": "x"}
    )
    assert refused.status_code == 403


def test_the_reply_reads_as_automatic_and_the_list_still_shows_the_patient_waiting(app, clock):
    # Last Saturday, 10:00 in the practice's time zone: closed by its hours. Everyone signs in
    # then (sessions are counted from that clock).
    now = datetime.fromtimestamp(clock.now / 1e6, ZoneInfo("Europe/Berlin"))
    saturday = (now - timedelta(days=(now.weekday() - 5) % 7 + 7)).replace(hour=10, minute=0)
    clock.now = int(saturday.timestamp() * 1_000_000)
    admin, staff, patient = browser(app), browser(app), browser(app)
    assert log_in(admin, *ADMIN).status_code == 303 and log_in(staff, *STAFF).status_code == 303
    set_contact(admin, "030 123 456", "Mo–Fr 8–12 Uhr")
    assert save(admin, enabled="on", text="Wir melden uns ab 8 Uhr.").status_code == 303
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    page = patient.get(f"{BASE}/patient/")
    sent = patient.post(
        f"{BASE}/patient/messages", data={"csrf": csrf_of(page), "body": "Knie geschwollen"}
    )
    assert sent.status_code == 303
    shown = re.findall(
        r'<li class="msg [^"]+" id="m-[^"]+"[^>]*>.*?<span class="who">([^<]*)</span>.*?'
        r'<p class="body">([^<]*)</p>',
        patient.get(f"{BASE}/patient/").get_data(as_text=True),
        re.S,
    )
    assert shown == [
        ("Sie", "Knie geschwollen"),
        ("Praxis Sonnenschein · Automatische Antwort", "Wir melden uns ab 8 Uhr."),
    ]
    on_staff_page = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert '<span class="who">Automatische Antwort</span>' in on_staff_page
    # The list: the automatic reply came last, and the patient still waits for an answer.
    listed = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    assert '<span class="who">Automatische Antwort:</span>' in listed
    assert "wartet auf Antwort seit" in listed

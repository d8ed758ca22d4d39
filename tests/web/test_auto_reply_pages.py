"""The admin switches the automatic reply on and writes its text on the admin page."""

import re

from .conftest import BASE, csrf_of
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

"""Unread badges and the tab title on the staff list; "gelesen" under messages."""

import re

from .conftest import ADMIN, BASE, browser, csrf_of, log_in, open_conversation


def patient_writes(patient, link: str, body: str) -> None:
    page = patient.get(BASE + link, follow_redirects=True)
    patient.post(f"{BASE}/patient/messages", data={"body": body, "csrf": csrf_of(page)})


def test_list_shows_unread_badges_and_the_tab_title_counts_them(app, staff):
    conv_id, link = open_conversation(staff, "Knie")
    other_id, _ = open_conversation(staff, "Schulter")
    patient_writes(browser(app), link, "Frage eins")
    html = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    assert re.search(r"<title>\(1\) Unterhaltungen", html)
    item = re.search(rf'<li data-conv="{conv_id}" class="unread">.*?</li>', html, re.S).group(0)
    assert "1 neu" in item and "hidden" not in item.split("data-badge")[1].split(">")[0]
    other = re.search(rf'<li data-conv="{other_id}">.*?</li>', html, re.S).group(0)
    assert "data-badge hidden" in other
    # Opening the conversation reads it, for this account only.
    staff.get(f"{BASE}/staff/c/{conv_id}")
    assert "<title>Unterhaltungen" in staff.get(f"{BASE}/staff/").get_data(as_text=True)
    colleague = browser(app)
    log_in(colleague, *ADMIN)
    assert "<title>(1) Unterhaltungen" in colleague.get(f"{BASE}/staff/").get_data(as_text=True)


def test_patient_sees_gelesen_once_staff_opened_the_conversation(app, staff):
    conv_id, link = open_conversation(staff)
    patient = browser(app)
    patient_writes(patient, link, "Danke")
    assert '<p class="seen" hidden>gelesen</p>' in patient.get(f"{BASE}/patient/").get_data(
        as_text=True
    )
    staff.get(f"{BASE}/staff/c/{conv_id}")
    assert '<p class="seen">gelesen</p>' in patient.get(f"{BASE}/patient/").get_data(as_text=True)

"""Patients land at the newest message: the redirect names it, the browser scrolls there itself."""

import re

from .conftest import BASE, browser, csrf_of, open_conversation


def test_the_link_leads_to_the_newest_message_and_only_it_carries_the_anchor(app, staff):
    conv_id, link = open_conversation(staff)
    patient = browser(app)
    opened = patient.get(BASE + link)
    assert opened.headers["Location"] == "/patient/#newest"
    empty = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert 'id="newest"' not in empty, "nothing to land on: the page's top"
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    for body in ("eins", "zwei", "drei"):
        staff.post(f"{BASE}/staff/c/{conv_id}/messages", data={"body": body, "csrf": csrf_of(page)})
    html = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert html.count('id="newest"') == 1
    last = re.findall(r'<li class="msg [^"]+" id="m-[^"]+"[^>]*>(.*?)</li>', html, re.S)[-1]
    assert '<span id="newest"></span>' in last and "drei" in last

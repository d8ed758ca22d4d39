"""The staff land on the team inbox: the list first, the new-conversation form one click away."""

import re

from .conftest import ADMIN, BASE, browser, csrf_of, log_in, open_conversation


def patient_writes(patient, link: str, body: str) -> None:
    page = patient.get(BASE + link, follow_redirects=True)
    sent = patient.post(f"{BASE}/patient/messages", data={"body": body, "csrf": csrf_of(page)})
    assert sent.status_code == 303


def row(html: str, conv_id: str) -> str:
    return re.search(rf'<li data-conv="{conv_id}"[^>]*>.*?</li>', html, re.S).group(0)


def inbox(client, **params) -> str:
    response = client.get(f"{BASE}/staff/", query_string=params)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_staff_land_on_the_list_and_reach_the_form_by_a_button(staff):
    open_conversation(staff, "Knie")
    html = inbox(staff)
    assert 'name="title"' not in html, "the form is on its own page now"
    button = re.search(r'<a class="button" href="([^"]+)">Neue Unterhaltung</a>', html)
    assert button and html.index("Neue Unterhaltung") < html.index('id="convs"')
    form = staff.get(BASE + button.group(1)).get_data(as_text=True)
    assert 'name="title"' in form and 'name="ref_name"' in form and 'name="pin"' in form


def test_a_refused_new_conversation_keeps_what_was_typed_on_the_form(staff):
    page = staff.get(f"{BASE}/staff/new")
    refused = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "Knie", "pin": "12", "ref_name": "Erika", "csrf": csrf_of(page)},
    )
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Die PIN muss aus 4 bis 8 Ziffern bestehen." in html
    assert 'value="Knie"' in html and 'value="Erika"' in html
    assert "Zurzeit gibt es keine Unterhaltungen." in inbox(staff), "nothing was opened"


def test_each_row_shows_patient_last_message_who_wrote_it_and_since_when_they_wait(app, staff):
    page = staff.get(f"{BASE}/staff/new")
    created = staff.post(
        f"{BASE}/staff/conversations",
        data={"title": "Knie", "ref_name": "Erika Mustermann", "csrf": csrf_of(page)},
    ).get_data(as_text=True)
    conv_id = re.search(r"/staff/c/([A-Za-z0-9_-]{22})", created).group(1)
    link = re.search(r'id="link" type="text" readonly value="([^"]+)"', created).group(1)
    patient_writes(browser(app), link.removeprefix(BASE), "Das Knie <b>schmerzt</b>")
    item = row(inbox(staff), conv_id)
    assert ">Erika Mustermann · Knie</a>" in item
    assert '<span class="who">Patient/in:</span>' in item
    assert "Das Knie &lt;b&gt;schmerzt&lt;/b&gt;" in item
    assert "wartet auf Antwort seit" in item and "1 neu" in item
    # The team answers: the wait is over, and the row says who wrote last.
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(
        f"{BASE}/staff/c/{conv_id}/messages", data={"body": "Kommen Sie", "csrf": csrf_of(page)}
    )
    item = row(inbox(staff), conv_id)
    assert '<span class="who">Sie:</span>' in item and "Kommen Sie" in item
    assert "wartet auf Antwort" not in item and "data-badge hidden" in item
    colleague = browser(app)
    log_in(colleague, *ADMIN)
    assert '<span class="who">pfleger:</span>' in row(inbox(colleague), conv_id)


def test_the_waiting_filter_keeps_only_those_whose_patient_wrote_last(app, staff, clock):
    asked, link = open_conversation(staff, "Frage offen")
    patient_writes(browser(app), link, "Noch da?")
    clock.advance(1)
    quiet, _ = open_conversation(staff, "Ruhig")
    html = inbox(staff, waiting="1")
    assert f'data-conv="{asked}"' in html and f'data-conv="{quiet}"' not in html
    assert 'name="waiting" value="1" checked' in html


def test_the_inbox_speaks_english_too(app, staff):
    conv_id, link = open_conversation(staff, "Knee")
    patient_writes(browser(app), link, "Hello")
    staff.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = inbox(staff, lang="en")
    item = row(html, conv_id)
    assert '<span class="who">Patient:</span>' in item and "waiting for a reply since" in item
    assert ">New conversation</a>" in html
    assert "Waiting only" in html

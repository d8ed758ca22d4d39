"""Correcting and deleting one's own message on the pages, without JavaScript."""

import io
import re

import pytest

from services.facility.core.edits import EDIT_WINDOW_SECONDS

from .conftest import BASE, csrf_of, open_conversation
from .test_compose import PDF


def item(html: str, msg_id: str) -> str:
    return re.search(rf'<li class="msg [^"]*" id="m-{msg_id}"[^>]*>.*?</li>', html, re.S).group(0)


def post_message(client, url: str, body: str, file: bytes | None = None) -> str:
    page = client.get(url, follow_redirects=True)
    data = {"csrf": csrf_of(page), "body": body}
    if file is not None:
        data["file"] = (io.BytesIO(file), "befund.pdf")
    sent = client.post(f"{url.rstrip('/')}/messages", data=data)
    assert sent.status_code == 303, sent.get_data(as_text=True)
    return sent.headers["Location"].rsplit("#m-", 1)[1]


@pytest.fixture
def pages(staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    return {
        "staff": (staff, f"{BASE}/staff/c/{conv_id}", f"{BASE}/staff/c/{conv_id}/m/"),
        "patient": (patient, f"{BASE}/patient/", f"{BASE}/patient/m/"),
    }


@pytest.mark.parametrize("side", ["staff", "patient"])
def test_the_writer_corrects_a_message_and_both_sides_see_it_marked(app, pages, side):
    client, url, edit_base = pages[side]
    msg_id = post_message(client, url, "Termin Dienstag")
    html = item(client.get(url).get_data(as_text=True), msg_id)
    assert "Ändern oder löschen" in html and "Möglich bis" in html
    assert "data-changed" not in html
    # Its own page says how long and what happens to the old text, with the text to correct.
    page = client.get(f"{edit_base}{msg_id}")
    form = page.get_data(as_text=True)
    assert "endgültig gelöscht" in form and ">Termin Dienstag</textarea>" in form
    corrected = client.post(
        f"{edit_base}{msg_id}/correct", data={"csrf": csrf_of(page), "body": "Termin Mittwoch"}
    )
    assert corrected.status_code == 303
    assert corrected.headers["Location"].endswith(f"#m-{msg_id}")
    for reader, reader_url, _ in pages.values():
        shown = item(reader.get(reader_url).get_data(as_text=True), msg_id)
        assert "Termin Mittwoch" in shown and "Termin Dienstag" not in shown
        assert "korrigiert" in shown
        # When it changed, for the page's script: a poll's newer change replaces it.
        assert re.match(r'<li [^>]*data-changed="\d{4}-\d\d-\d\dT[^"]+Z"', shown), shown[:200]


@pytest.mark.parametrize("side", ["staff", "patient"])
def test_the_writer_deletes_a_message_and_its_file(app, pages, side):
    client, url, edit_base = pages[side]
    msg_id = post_message(client, url, "Befund anbei", PDF)
    page = client.get(f"{edit_base}{msg_id}")
    deleted = client.post(f"{edit_base}{msg_id}/delete", data={"csrf": csrf_of(page)})
    assert deleted.status_code == 303
    for reader, reader_url, _ in pages.values():
        shown = item(reader.get(reader_url).get_data(as_text=True), msg_id)
        assert "Diese Nachricht wurde von ihrem Absender gelöscht." in shown
        assert "Befund anbei" not in shown and "befund.pdf" not in shown
        assert "Ändern oder löschen" not in shown
        assert re.match(r'<li [^>]*data-changed="\d{4}-\d\d-\d\dT[^"]+Z"', shown), shown[:200]


def test_the_other_side_gets_no_controls_and_cannot_post_them(app, pages):
    staff, staff_url, staff_base = pages["staff"]
    patient, patient_url, patient_base = pages["patient"]
    msg_id = post_message(staff, staff_url, "Bitte nüchtern kommen")
    page = patient.get(patient_url)
    assert "Ändern oder löschen" not in item(page.get_data(as_text=True), msg_id)
    assert patient.get(f"{patient_base}{msg_id}").status_code == 404
    refused = patient.post(
        f"{patient_base}{msg_id}/delete", data={"csrf": csrf_of(page)}, follow_redirects=True
    )
    assert refused.status_code == 403
    assert "Bitte nüchtern kommen" in staff.get(staff_url).get_data(as_text=True)


def test_too_late_the_error_is_shown_at_the_message_and_the_text_kept(app, pages, clock):
    client, url, edit_base = pages["patient"]
    msg_id = post_message(client, url, "Rezept bitte")
    page = client.get(url)
    clock.advance(EDIT_WINDOW_SECONDS + 1)
    late = client.post(
        f"{edit_base}{msg_id}/correct", data={"csrf": csrf_of(page), "body": "Rezept für Ibu"}
    )
    assert late.status_code == 409
    html = late.get_data(as_text=True)
    assert "nur in den ersten 10 Minuten" in html
    assert "Rezept bitte" in item(html, msg_id)


def test_an_empty_correction_is_refused_on_its_form(app, pages):
    client, url, edit_base = pages["staff"]
    msg_id = post_message(client, url, "Laborwerte folgen")
    page = client.get(url)
    empty = client.post(f"{edit_base}{msg_id}/correct", data={"csrf": csrf_of(page), "body": " "})
    assert empty.status_code == 400
    shown = empty.get_data(as_text=True)
    assert "<title>Fehler: " in shown
    assert 'aria-invalid="true"' in shown and 'role="alert"' in shown
    assert "Laborwerte folgen" in item(client.get(url).get_data(as_text=True), msg_id)


def test_a_change_without_the_forms_token_is_refused(app, pages):
    client, url, edit_base = pages["staff"]
    msg_id = post_message(client, url, "bleibt")
    refused = client.post(f"{edit_base}{msg_id}/delete", data={"csrf": "falsch"})
    assert refused.status_code == 403
    assert "bleibt" in item(client.get(url).get_data(as_text=True), msg_id)

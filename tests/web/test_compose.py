"""One compose form on both sides: text, a file, or both; a counter; errors next to the form."""

import io
import re

from .conftest import BASE, csrf_of, open_conversation
from .test_staff_pages import PNG

PDF = b"%PDF-1.4\n% test\n" + bytes(range(256)) * 8


def compose_form(html: str) -> str:
    return re.search(r'<form [^>]*id="compose".*?</form>', html, re.S).group(0)


def test_there_is_one_form_for_text_and_file_on_both_sides(app, staff, patient):
    conv_id, link = open_conversation(staff)
    staff_html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    patient_html = patient.get(BASE + link, follow_redirects=True).get_data(as_text=True)
    for html in (staff_html, patient_html):
        form = compose_form(html)
        assert 'enctype="multipart/form-data"' in form
        assert 'name="body"' in form and 'name="file"' in form
        assert "attachments" not in form  # no second form for files


def test_text_and_photo_in_one_post_become_one_message_with_an_inline_image(app, staff):
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf, "body": "Hier der Befund", "file": (io.BytesIO(PNG), "arm.png")},
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    item = re.search(r'<li class="msg own".*?</li>', html, re.S).group(0)
    assert "Hier der Befund" in item
    src = re.search(r'<img src="([^"]+)" alt="arm.png"', item).group(1)
    # The image is decrypted on request by the ordinary download route.
    image = staff.get(BASE + src)
    assert image.status_code == 200 and image.data == PNG and image.mimetype == "image/png"


def test_a_pdf_is_listed_but_not_shown_as_an_image(app, staff, patient):
    conv_id, link = open_conversation(staff)
    page = patient.get(BASE + link, follow_redirects=True)
    sent = patient.post(
        f"{BASE}/patient/messages",
        data={"csrf": csrf_of(page), "file": (io.BytesIO(PDF), "labor.pdf")},
    )
    assert sent.status_code == 303
    html = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    assert "labor.pdf" in html and "<img" not in html


def test_the_counter_shows_what_is_left_and_the_limit_stays(app, staff):
    conv_id, _ = open_conversation(staff)
    form = compose_form(staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True))
    assert 'maxlength="10000"' in form
    assert re.search(r'id="body-count"[^>]*>Noch 10000 Zeichen<', form)


def test_errors_show_in_the_form_and_keep_the_text(app, staff):
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    url = f"{BASE}/staff/c/{conv_id}/messages"
    empty = staff.post(url, data={"csrf": csrf, "body": "  "})
    assert empty.status_code == 400
    error = re.search(r'id="compose-error" role="alert">([^<]+)<', compose_form(empty.text))
    assert "Nachricht oder wählen Sie eine Datei" in error.group(1)
    fake = staff.post(
        url, data={"csrf": csrf, "body": "mein Text", "file": (io.BytesIO(b"MZ exe"), "x.png")}
    )
    form = compose_form(fake.get_data(as_text=True))
    assert fake.status_code == 415 and "kein Foto" in form and ">mein Text</textarea>" in form
    assert re.search(r'id="body-count"[^>]*>Noch 9991 Zeichen<', form)
    too_long = staff.post(url, data={"csrf": csrf, "body": "x" * 10001})
    assert too_long.status_code == 400 and "höchstens 10000 Zeichen" in compose_form(
        too_long.get_data(as_text=True)
    )
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert 'class="msg ' not in html


def test_a_large_photo_through_the_compose_form_takes_the_upload_path(app, staff):
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    big = PNG + b"\x00" * (2 * 1024 * 1024)
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf, "file": (io.BytesIO(big), "gross.png")},
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "gross.png" in html and "2,0 MB" in html


def test_several_files_and_a_camera_photo_in_one_post_become_one_message(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    form = compose_form(page.get_data(as_text=True))
    assert re.search(r'<input id="file" name="file" type="file"[^>]* multiple', form)
    assert re.search(r'<input id="camera" name="file" type="file" accept="image/\*" capture=', form)
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={
            "csrf": csrf_of(page),
            "body": "Drei Dateien",
            "file": [
                (io.BytesIO(PDF), "labor.pdf"),
                (io.BytesIO(PNG), "arm.png"),
                (io.BytesIO(PNG), "kamera.png"),
            ],
        },
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    items = re.findall(r'<li class="msg own".*?</li>', html, re.S)
    assert len(items) == 1
    assert all(name in items[0] for name in ("Drei Dateien", "labor.pdf", "arm.png", "kamera.png"))


def test_one_bad_file_among_several_stores_none_and_keeps_the_text(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={
            "csrf": csrf_of(page),
            "body": "Bitte ansehen",
            "file": [(io.BytesIO(PDF), "labor.pdf"), (io.BytesIO(b"MZ\x90\x00"), "virus.exe")],
        },
    )
    assert refused.status_code == 415
    html = refused.get_data(as_text=True)
    assert ">Bitte ansehen</textarea>" in html and 'aria-invalid="true"' in html
    assert "labor.pdf" not in html.split('id="compose"')[0]


def test_more_than_ten_files_are_refused(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    refused = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf_of(page), "file": [(io.BytesIO(PNG), f"{n}.png") for n in range(11)]},
    )
    assert refused.status_code == 400
    assert "Höchstens 10 Dateien pro Nachricht." in refused.get_data(as_text=True)
    assert "0.png" not in staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)

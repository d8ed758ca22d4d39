"""In Chromium on a phone: a camera photo and a PDF in one message; the photo is scaled down in
the browser before upload, the upload shows progress and Send stays disabled meanwhile."""

import io

import pytest
from PIL import Image

from devsupport import localhost

from .test_browser import goto, new_page
from .test_compose import PDF

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def big_photo(path) -> int:
    """A 4000x3000 camera-sized JPEG of noise (several MB); returns its size."""
    Image.effect_noise((4000, 3000), 90).convert("RGB").save(path, "JPEG", quality=95)
    return path.stat().st_size


def test_a_phone_photo_is_scaled_and_sent_with_a_pdf(chromium, site, tmp_path):
    photo = tmp_path / "IMG_0001.jpg"
    assert big_photo(photo) > 4 * 1024 * 1024
    pdf = tmp_path / "befund.pdf"
    pdf.write_bytes(PDF)
    api = site.api_login()
    conv = localhost.post(
        f"{site.base}/api/v1/conversations", json={}, headers=api, verify=False, timeout=30
    ).json()

    patient = new_page(chromium, site, viewport=PHONE)
    refused = []
    patient.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    goto(patient, site.reach(conv["patient_url"]))
    patient.set_input_files("#camera", str(photo))
    patient.set_input_files("#file", str(pdf))
    chosen = patient.locator("#chosen li").all_inner_texts()
    assert chosen[0].startswith("befund.pdf (PDF, ") and chosen[1].startswith("IMG_0001.jpg (")
    # The chosen PDF is shown before it is sent: the file itself, in a frame of its own that the
    # pages' policy allows (and only it: the photo gets none).
    preview = patient.locator("#chosen iframe.preview")
    assert preview.count() == 1
    assert preview.get_attribute("title") == "Vorschau: befund.pdf"
    assert preview.get_attribute("src").startswith("blob:")
    patient.wait_for_function(
        "document.querySelector('#chosen iframe.preview').contentDocument === null"
        " || document.querySelector('#chosen iframe.preview').contentDocument.readyState"
        " === 'complete'"
    )
    patient.get_by_label("Ihre Nachricht").fill("Foto vom Ausschlag und der Befund")
    with patient.expect_navigation():
        patient.get_by_role("button", name="Senden", exact=True).click()
    # The page came again, at the new message.
    newest = patient.locator("#messages > li").last
    newest.get_by_text("befund.pdf").first.wait_for()
    assert "IMG_0001.jpg" in newest.inner_text()
    patient.wait_for_function("document.activeElement.id.startsWith('m-')")
    assert refused == [], "the preview frame broke the page's policy"

    messages = localhost.get(
        f"{site.base}/api/v1/conversations/{conv['id']}/messages",
        headers=api,
        verify=False,
        timeout=30,
    ).json()["messages"]
    (message,) = messages
    files = {a["filename"]: a for a in message["attachments"]}
    assert set(files) == {"befund.pdf", "IMG_0001.jpg"}
    stored = localhost.get(
        f"{site.base}/api/v1/attachments/{files['IMG_0001.jpg']['id']}",
        headers=api,
        verify=False,
        timeout=30,
    ).content
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG" and max(image.size) == 2048 and image.size == (2048, 1536)
    assert len(stored) < photo.stat().st_size / 2


def test_send_is_disabled_and_progress_shown_while_uploading(chromium, site, tmp_path):
    photo = tmp_path / "IMG_0002.jpg"
    big_photo(photo)
    api = site.api_login()
    conv = localhost.post(
        f"{site.base}/api/v1/conversations", json={}, headers=api, verify=False, timeout=30
    ).json()
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(conv["patient_url"]))
    # Hold the upload's answer until the form's state is read.
    held = []
    patient.route("**/patient/messages", lambda route: held.append(route))
    patient.set_input_files("#camera", str(photo))
    with patient.expect_request("**/patient/messages"):
        patient.get_by_role("button", name="Senden", exact=True).click()
    assert patient.locator("#upload-progress").is_visible()
    assert patient.locator("#compose button[type=submit]").is_disabled()
    assert patient.evaluate("document.getElementById('upload-progress').value") >= 0
    patient.wait_for_function("() => true")  # let the route handler run
    assert len(held) == 1
    with patient.expect_navigation():
        held[0].continue_()
    patient.locator("#messages > li").last.get_by_text("IMG_0002.jpg").first.wait_for()
    assert patient.locator("#compose button[type=submit]").is_enabled()

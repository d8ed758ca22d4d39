"""Real Chromium against a facility: through the gateway over TLS (and a quick local variant).

Screenshots of the main pages go to test-artifacts/screenshots/ (not committed).
"""

import json
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError

from devsupport import localhost

from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
PHONE = {"width": 360, "height": 740}


def new_page(
    chromium, site, locale: str = "de-DE", viewport: dict | None = None, script: bool = True
):
    context = chromium.new_context(
        ignore_https_errors=True,
        locale=locale,
        viewport=viewport or {"width": 1024, "height": 800},
        java_script_enabled=script,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    # CSP violations, script errors and missing assets show up here. Failed loads are left to
    # the response check: the poll's 404 after a deletion is expected.
    page.problems = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and page.problems.append(m.text)
        ),
    )
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on(
        "response",
        lambda r: "/static/" in r.url and r.status >= 400 and page.problems.append(r.url),
    )
    return page


def goto(page, url: str) -> None:
    """Navigate; again if Chromium saw the host's interfaces change (Docker adds and removes
    veth interfaces whenever any container starts or stops, and Chromium then aborts loads)."""
    for attempt in range(3):
        try:
            page.goto(url)
            return
        except PlaywrightError as e:
            if "ERR_NETWORK_CHANGED" not in str(e) or attempt == 2:
                raise
            time.sleep(1)


def shot(page, site, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{site.name}-{name}.png"), full_page=True)


def log_in(page, site) -> None:
    goto(page, f"{site.base}/login")
    page.get_by_label("Benutzername").fill(site.admin_user)
    page.get_by_label("Passwort", exact=True).fill(site.admin_password)
    page.get_by_role("button", name="Anmelden", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/$"))


def open_conversation(page, title: str, pin: str = "") -> str:
    goto(page, page.url.split("/staff/")[0] + "/staff/")
    page.get_by_role("link", name="Neue Unterhaltung").click()
    page.get_by_label("Titel (optional)").fill(title)
    if pin:
        page.get_by_label("PIN (optional)").fill(pin)
    page.get_by_role("button", name="Unterhaltung eröffnen").click()
    return page.locator("#link").input_value()


def wait_until(page, script: str, target=None, timeout: float = 20) -> bool:
    """Whether `script` turns true within `timeout` seconds (the pages' CSP forbids the eval
    that Playwright's wait_for_function needs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.evaluate(script) if target is not None else page.evaluate(script):
            return True
        page.wait_for_timeout(250)
    return False


def no_reload_marker(page) -> None:
    page.evaluate("window.medcellMarker = 42")


def still_same_document(page) -> bool:
    return page.evaluate("window.medcellMarker === 42")


def test_conversation_round_trip_through_two_browsers(chromium, site):
    staff = new_page(chromium, site)
    staff.context.grant_permissions(["clipboard-read", "clipboard-write"])
    goto(staff, f"{site.base}/login")
    shot(staff, site, "login")
    log_in(staff, site)
    shot(staff, site, "staff-home")

    link = open_conversation(staff, "Hautausschlag")
    assert "/p/" in link
    staff.get_by_role("button", name="Link kopieren").click()
    staff.get_by_text("Kopiert.").wait_for()
    if site.base.startswith("https:"):
        assert staff.evaluate("navigator.clipboard.readText()") == link
    staff.get_by_text("Als QR-Code zeigen").click()
    assert staff.locator("details.qr svg path").count() >= 1
    shot(staff, site, "staff-link-and-qr")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    conv_id = re.search(r"/staff/c/([A-Za-z0-9_-]{22})$", staff.url).group(1)

    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    token = link.rsplit("/", 1)[1]
    assert token not in patient.url
    assert token not in patient.evaluate("document.referrer + location.href")
    patient.get_by_role("heading", name="Ihre Unterhaltung mit Praxis am Park").wait_for()

    # Staff writes; the patient's page shows it without reloading, and back again.
    no_reload_marker(patient)
    staff.get_by_label("Ihre Nachricht").fill("Bitte schicken Sie ein Foto.")
    staff.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("#messages").get_by_text("Bitte schicken Sie ein Foto.").wait_for()
    assert still_same_document(patient)
    # The patient's visible page has shown it: the staff's page learns so by its poll.
    staff.locator("#messages li.own .seen").get_by_text("gelesen").wait_for()

    no_reload_marker(staff)
    patient.get_by_label("Ihre Nachricht").fill("Hier ist es, am linken Arm.")
    assert patient.locator("#body-count").inner_text() == "Noch 9973 Zeichen"
    patient.get_by_role("button", name="Senden", exact=True).click()
    staff.locator("#messages").get_by_text("Hier ist es, am linken Arm.").wait_for()
    assert still_same_document(staff)

    patient.locator("#file").set_input_files(
        files=[{"name": "arm.png", "mimeType": "image/png", "buffer": PNG}]
    )
    patient.get_by_label("Ihre Nachricht").fill("Und hier das Foto.")
    patient.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("#messages").get_by_text("arm.png").wait_for()
    shot(patient, site, "patient-conversation")
    staff.locator("#messages p.file").get_by_role("link", name="arm.png").wait_for()
    # Shown inline on the staff's page (arrived by poll), decrypted by the download route.
    image = staff.locator("#messages img[alt='arm.png']")
    image.wait_for()
    assert wait_until(staff, "img => img.complete && img.naturalWidth === 1", image)
    assert still_same_document(staff)
    shot(staff, site, "staff-conversation")
    with staff.expect_download() as download:
        staff.locator("#messages").get_by_role("link", name="Herunterladen").click()
    assert open(download.value.path(), "rb").read() == PNG
    ids = staff.evaluate("[...document.querySelectorAll('#messages li')].map(li => li.id.slice(2))")
    att_href = staff.locator("#messages p.file a", has_text="arm.png").get_attribute("href")
    att_id = att_href.rsplit("/", 1)[1]

    no_reload_marker(staff)
    patient.get_by_role("link", name="Diese Unterhaltung löschen").click()
    shot(patient, site, "patient-confirm-delete")
    patient.get_by_role("button", name="Ja, endgültig löschen").click()
    patient.get_by_text("Es ist nichts davon mehr gespeichert.").wait_for()
    shot(patient, site, "patient-deleted")
    with patient.expect_download() as receipt_download:
        patient.get_by_role("link", name="Beleg herunterladen (JSON)").click()
    receipt = json.loads(open(receipt_download.value.path(), "rb").read())
    assert receipt["reason"] == "patient" and receipt["verified"] is True
    assert receipt_download.value.suggested_filename == f"receipt-{receipt['receipt_id']}.json"
    staff.locator("#gone").wait_for(state="visible")
    assert still_same_document(staff)
    goto(staff, f"{site.base}/staff/")
    assert "Hautausschlag" not in staff.content()
    assert "von der Patientin oder dem Patienten gelöscht" in staff.content()
    assert receipt["receipt_id"][:8] in staff.content()

    headers = site.api_login()
    gone = localhost.get(
        f"{site.base}/api/v1/conversations/{conv_id}", headers=headers, verify=False, timeout=30
    )
    assert gone.status_code == 404
    as_patient = localhost.get(
        f"{site.base}/api/v1/conversations/{conv_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
        verify=False,
        timeout=30,
    )
    assert as_patient.status_code == 401
    assert site.scan([conv_id, att_id, *ids]) == []
    assert staff.problems == [] and patient.problems == []


def test_pin_flow_and_lockout(chromium, site):
    staff = new_page(chromium, site)
    log_in(staff, site)
    link = open_conversation(staff, "Mit PIN", pin="4711")
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/pin$"))
    shot(patient, site, "patient-pin")
    patient.get_by_label("PIN (4 bis 8 Ziffern)").fill("1234")
    patient.get_by_role("button", name="Öffnen").click()
    patient.get_by_text("Die PIN ist falsch. Noch 4 Versuche").wait_for()
    patient.get_by_label("PIN (4 bis 8 Ziffern)").fill("4711")
    patient.get_by_role("button", name="Öffnen").click()
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    patient.get_by_role("heading", name="Ihre Unterhaltung mit Praxis am Park").wait_for()

    locked_link = open_conversation(staff, "Wird gesperrt", pin="2468")
    thief = new_page(chromium, site, viewport=PHONE)
    goto(thief, site.reach(locked_link))
    for _ in range(5):
        thief.get_by_label("PIN (4 bis 8 Ziffern)").fill("0000")
        thief.get_by_role("button", name="Öffnen").click()
    thief.get_by_role("heading", name="Link gesperrt").wait_for()
    shot(thief, site, "patient-link-locked")
    again = new_page(chromium, site)
    goto(again, site.reach(locked_link))
    again.get_by_role("heading", name="Link gesperrt").wait_for()
    goto(staff, f"{site.base}/staff/")
    staff.get_by_text("Link gesperrt").wait_for()


def test_forms_without_the_right_csrf_token_are_refused(chromium, site):
    staff = new_page(chromium, site)
    log_in(staff, site)
    staff.get_by_role("link", name="Neue Unterhaltung").click()
    staff.evaluate(
        "document.querySelector(\"form[action$='/staff/conversations'] input[name=csrf]\")"
        ".value = 'forged'"
    )
    staff.get_by_label("Titel (optional)").fill("Gefälscht")
    staff.get_by_role("button", name="Unterhaltung eröffnen").click()
    staff.get_by_text("Das Formular ist abgelaufen").wait_for()
    status = staff.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams(
               {title: 'x'})})).status""",
        f"{site.base}/staff/conversations",
    )
    assert status == 403
    goto(staff, f"{site.base}/staff/")
    assert "Gefälscht" not in staff.content()


def test_german_and_english(chromium, site):
    german = new_page(chromium, site, locale="de-DE")
    goto(german, f"{site.base}/login")
    assert german.locator("html").get_attribute("lang") == "de"
    german.get_by_role("heading", name="Anmeldung für das Team").wait_for()
    german.get_by_role("link", name="English").click()
    german.get_by_role("heading", name="Staff login").wait_for()
    goto(german, f"{site.base}/login")
    german.get_by_role("heading", name="Staff login").wait_for()

    english = new_page(chromium, site, locale="en-US")
    goto(english, f"{site.base}/login")
    assert english.locator("html").get_attribute("lang") == "en"
    english.get_by_role("heading", name="Staff login").wait_for()
    shot(english, site, "login-english")


def test_320px_wide_pages_do_not_scroll_sideways(chromium, site):
    narrow = {"width": 320, "height": 640}
    staff = new_page(chromium, site, viewport=narrow)
    log_in(staff, site)
    link = open_conversation(staff, "Schmal " + "x" * 80)
    staff.get_by_text("Als QR-Code zeigen").click()
    assert staff.evaluate("document.documentElement.scrollWidth") <= 320
    shot(staff, site, "320-staff-link")
    wide_word = "Donaudampfschifffahrtsgesellschaftskapitän" * 3
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_label("Ihre Nachricht").fill(f"{wide_word} https://example.invalid/{'a' * 90}")
    staff.get_by_role("button", name="Senden", exact=True).click()
    patient = new_page(chromium, site, viewport=narrow)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    for name, page, url in (
        ("320-staff-conversation", staff, None),
        ("320-patient-conversation", patient, None),
        ("320-staff-home", staff, f"{site.base}/staff/"),
        ("320-admin", staff, f"{site.base}/staff/admin"),
        ("320-login", new_page(chromium, site, viewport=narrow), f"{site.base}/login"),
    ):
        if url:
            goto(page, url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, f"{name} is {width}px wide"
        shot(page, site, name)
    assert staff.problems == [] and patient.problems == []


def test_reading_and_replying_work_with_javascript_off(chromium, site):
    staff = new_page(chromium, site, script=False)
    log_in(staff, site)
    link = open_conversation(staff, "Ohne Skript")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    staff.get_by_label("Ihre Nachricht").fill("Guten Tag!")
    staff.get_by_role("button", name="Senden", exact=True).click()
    patient = new_page(chromium, site, viewport=PHONE, script=False)
    goto(patient, site.reach(link))
    patient.locator("#messages").get_by_text("Guten Tag!").wait_for()
    patient.get_by_label("Ihre Nachricht").fill("Danke, bis morgen.")
    patient.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("#messages").get_by_text("Danke, bis morgen.").wait_for()
    staff.get_by_role("link", name="Auf neue Nachrichten prüfen").click()
    staff.locator("#messages").get_by_text("Danke, bis morgen.").wait_for()
    patient.get_by_role("link", name="Diese Unterhaltung löschen").click()
    patient.get_by_role("button", name="Ja, endgültig löschen").click()
    patient.get_by_text("Es ist nichts davon mehr gespeichert.").wait_for()


def test_an_open_page_polls_without_counting_as_activity(chromium, site):
    """A tab left open must not keep a facility awake: its polls are marked and not counted."""
    staff = new_page(chromium, site)
    log_in(staff, site)
    link = open_conversation(staff, "Offener Tab")
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.wait_for_url(re.compile(r"/patient/(#newest)?$"))
    staff.close()
    polls = []
    patient.on(
        "response",
        lambda r: r.request.headers.get("x-medcell-poll") == "1" and polls.append(r.status),
    )
    counted = site.activity()
    deadline = time.monotonic() + 30
    while len(polls) < 3 and time.monotonic() < deadline:
        patient.wait_for_timeout(500)
    assert len(polls) >= 3, "the open page did not poll"
    assert set(polls) <= {200, 204}
    assert site.activity() == counted
    assert patient.problems == []


def test_the_list_tab_title_counts_unread_conversations_live(chromium, site):
    staff = new_page(chromium, site)
    log_in(staff, site)
    link = open_conversation(staff, "Ungelesen")
    goto(staff, f"{site.base}/staff/")
    assert not staff.title().startswith("(")
    patient = new_page(chromium, site, viewport=PHONE)
    goto(patient, site.reach(link))
    patient.get_by_label("Ihre Nachricht").fill("Eine Frage")
    patient.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("#messages").get_by_text("Eine Frage").wait_for()
    # No reload: the list's own poll brings the badge and the title's count.
    assert wait_until(staff, "() => document.title.startsWith('(1) ')", timeout=30)
    staff.locator("li.unread [data-badge]").get_by_text("1 neu").wait_for()
    shot(staff, site, "staff-home-unread")
    staff.get_by_role("link", name="Ungelesen").click()
    goto(staff, f"{site.base}/staff/")
    assert not staff.title().startswith("(")
    # Read now: its badge is gone from sight, not just emptied.
    item = staff.locator("li[data-conv]", has=staff.get_by_role("link", name="Ungelesen"))
    assert item.locator("[data-badge]").is_hidden()
    assert staff.problems == [] and patient.problems == []


def test_a_quick_reply_goes_in_at_the_cursor_and_the_counter_follows(chromium, site):
    staff = new_page(chromium, site)
    log_in(staff, site)
    goto(staff, f"{site.base}/staff/admin")
    staff.locator("#quick-label").fill("Termin")
    staff.locator("#quick-body").fill("bitte rufen Sie uns an.")
    staff.get_by_role("button", name="Textbaustein speichern").click()
    open_conversation(staff, "Baustein")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    field = staff.get_by_label("Ihre Nachricht")
    field.fill("Guten Tag, ")
    field.press("End")
    staff.get_by_label("Textbaustein").select_option(label="Termin")
    staff.get_by_role("button", name="Einfügen").click()
    assert field.input_value() == "Guten Tag, bitte rufen Sie uns an."
    assert staff.locator("#body-count").inner_text() == f"Noch {10000 - 34} Zeichen"
    staff.get_by_role("button", name="Senden", exact=True).click()
    staff.locator("#messages").get_by_text("Guten Tag, bitte rufen Sie uns an.").wait_for()
    assert staff.problems == []

"""In Chromium: a typed message survives an expired session, focus follows a post and an
error, errors are announced, the counter speaks only near the limit."""

import pytest

from .test_browser import log_in, new_page, open_conversation

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def focused(page) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.tagName")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_draft_survives_an_expired_session_and_focus_follows(chromium, site, viewport):
    staff = new_page(chromium, site, viewport=viewport)
    log_in(staff, site)
    open_conversation(staff, "Entwurf")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    conversation = staff.url
    staff.get_by_label("Ihre Nachricht").fill("Lange überlegte Antwort")
    staff.context.clear_cookies()  # the session ends while the text is typed
    staff.get_by_role("button", name="Senden", exact=True).click()
    staff.get_by_label("Benutzername").wait_for()
    log_in(staff, site)
    staff.goto(conversation)
    field = staff.get_by_label("Ihre Nachricht")
    assert field.input_value() == "Lange überlegte Antwort"
    assert staff.locator("#draft-note").is_visible()

    staff.get_by_role("button", name="Senden", exact=True).click()
    newest = staff.locator("#messages > li").last
    newest.locator(".body").get_by_text("Lange überlegte Antwort").wait_for()
    staff.wait_for_function("document.activeElement.id.startsWith('m-')")
    assert focused(staff) == newest.get_attribute("id")
    staff.reload()
    assert staff.get_by_label("Ihre Nachricht").input_value() == ""  # posted: no draft left

    # An empty post: the title says so, the field is marked and has the focus.
    staff.get_by_role("button", name="Senden", exact=True).click()
    staff.locator("#compose-error").wait_for()
    assert staff.title().startswith("Fehler: ")
    staff.wait_for_function("document.activeElement.id === 'body'")
    assert staff.locator("#body").get_attribute("aria-invalid") == "true"
    described = staff.locator("#body").get_attribute("aria-describedby").split()
    assert "compose-error" in described
    assert staff.problems == []


def test_the_counter_is_announced_only_near_the_limit(chromium, site):
    staff = new_page(chromium, site, viewport=DESKTOP)
    log_in(staff, site)
    open_conversation(staff, "Zähler")
    staff.get_by_role("link", name="Zur Unterhaltung").click()
    assert staff.locator("#body-count").get_attribute("aria-live") is None
    field = staff.get_by_label("Ihre Nachricht")
    field.fill("Kurz")
    assert staff.locator("#body-count").inner_text() == "Noch 9996 Zeichen"
    assert staff.locator("#body-count-live").inner_text() == ""
    field.fill("x" * 9950)
    assert staff.locator("#body-count-live").inner_text() == "Noch 50 Zeichen"
    field.press("End")
    field.type("y")  # one more keystroke within the same band: not read again
    assert staff.locator("#body-count-live").inner_text() == "Noch 50 Zeichen"

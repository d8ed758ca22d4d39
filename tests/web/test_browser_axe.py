"""axe-core (tests/web/axe, pinned) over every page state in Chromium: staff and patient, desktop
and phone, German and English, forms in error and error pages: no violation of WCAG 2.1 A/AA."""

import json
from pathlib import Path

import pytest

from devsupport import localhost

from .test_browser import goto, new_page

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
LOCALES = {"de": "de-DE", "en": "en-US"}


def audit(page, state: str, found: dict) -> None:
    """Run axe on the page as it is now; record its violations under `state`."""
    page.wait_for_load_state("load")
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    assert result["passes"], f"axe checked nothing on {state}"
    for violation in result["violations"]:
        targets = [node["target"] for node in violation["nodes"]]
        found.setdefault(state, []).append(f"{violation['id']}: {targets}")


def audited_page(chromium, site, viewport: str, lang: str, script: bool = True):
    assert AXE.is_file(), "axe-core is not installed: run `make axe`"
    page = new_page(
        chromium, site, locale=LOCALES[lang], viewport=VIEWPORTS[viewport], script=script
    )
    # An init script comes in by the browser's protocol, not as a page script: the pages'
    # Content-Security-Policy stays as it is.
    page.add_init_script(path=str(AXE))
    return page


def submit(page, form: str) -> None:
    page.locator(f"{form} button[type=submit]").first.click()
    page.wait_for_load_state("load")


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_page_state_has_no_wcag_violation(chromium, site, viewport, lang):
    found: dict[str, list] = {}
    api = site.api_login()
    conv = localhost.post(
        f"{site.base}/api/v1/conversations",
        json={"title": "Axe", "reference": {"name": "Erika Muster"}},
        headers=api,
        verify=False,
        timeout=30,
    ).json()

    staff = audited_page(chromium, site, viewport, lang)
    goto(staff, f"{site.base}/login")
    audit(staff, "login", found)
    staff.fill("#username", site.admin_user)
    staff.fill("#password", "falsch")
    submit(staff, "main form")
    audit(staff, "login, wrong password", found)
    staff.fill("#username", site.admin_user)
    staff.fill("#password", site.admin_password)
    submit(staff, "main form")
    audit(staff, "team inbox", found)
    goto(staff, f"{site.base}/staff/new")
    audit(staff, "new conversation", found)
    submit(staff, "main form")
    audit(staff, "patient link", found)

    goto(staff, f"{site.base}/staff/c/{conv['id']}")
    audit(staff, "conversation, empty", found)
    staff.fill("#body", "Guten Tag, Ihr Befund ist da.")
    submit(staff, "#compose")
    audit(staff, "conversation, a message to correct", found)
    staff.locator("p.edit a").last.click()
    audit(staff, "correct a message", found)
    staff.fill("#edit-body", "")
    submit(staff, "main form:has(textarea)")
    audit(staff, "correct a message, empty", found)
    goto(staff, f"{site.base}/staff/c/{conv['id']}")
    staff.fill("#body", "")
    submit(staff, "#compose")
    audit(staff, "conversation, empty post", found)
    for path, state in (
        ("/staff/admin", "admin"),
        ("/staff/password", "password"),
        (f"/staff/c/{conv['id']}/delete", "confirm deletion"),
        ("/staff/c/AAAAAAAAAAAAAAAAAAAAAA", "not found"),
    ):
        goto(staff, site.base + path)
        audit(staff, state, found)

    patient = audited_page(chromium, site, viewport, lang)
    goto(patient, site.reach(conv["patient_url"]))
    audit(patient, "patient conversation", found)
    patient.fill("#body", "Danke!")
    submit(patient, "#compose")
    patient.locator("p.edit a").last.click()
    audit(patient, "patient, a message to correct", found)
    submit(patient, "main form:has(textarea)")  # unchanged text: a correction
    audit(patient, "patient, corrected", found)
    submit(patient, "#compose")
    audit(patient, "patient, empty post", found)
    goto(patient, f"{site.base}/patient/delete")
    audit(patient, "patient, confirm deletion", found)
    submit(patient, "main form")
    audit(patient, "patient, deleted with receipt", found)
    goto(patient, f"{site.base}/p/not-a-valid-link-token-at-all")
    audit(patient, "invalid link", found)

    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)
    assert staff.problems == [] and patient.problems == []

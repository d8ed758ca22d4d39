"""In Chromium on a phone, without JavaScript: a patient opening the link of a 25-message thread
sees the newest message, not the oldest."""

import re

import pytest

from devsupport import localhost

from .test_browser import goto, new_page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_a_long_thread_opens_at_its_newest_message(chromium, site):
    staff = site.api_login()
    conv = localhost.post(
        f"{site.base}/api/v1/conversations",
        json={"title": "Lang"},
        headers=staff,
        verify=False,
        timeout=30,
    ).json()
    for n in range(1, 26):
        sent = localhost.post(
            f"{site.base}/api/v1/conversations/{conv['id']}/messages",
            json={"body": f"Nachricht Nummer {n}: " + "Text " * 30},
            headers=staff,
            verify=False,
            timeout=30,
        )
        assert sent.status_code == 201
    patient = new_page(chromium, site, viewport=PHONE, script=False)
    goto(patient, site.reach(conv["patient_url"]))
    patient.wait_for_url(re.compile(r"/patient/#newest$"))
    newest = patient.locator("#messages li").last
    assert "Nachricht Nummer 25:" in newest.inner_text()
    box = newest.bounding_box()
    assert 0 <= box["y"] < PHONE["height"], f"the newest message is at {box['y']}px"
    oldest = patient.locator("#messages li").first.bounding_box()
    assert oldest["y"] + oldest["height"] < 0, "the oldest is scrolled away"

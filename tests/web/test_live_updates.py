"""Live updates of an open page: polls are served like any read but do not keep a facility awake."""

import re
from pathlib import Path

from .conftest import BASE, csrf_of, open_conversation

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "facility"
    / "pages"
    / "static"
    / "medcell.js"
)


def requests_counted(client) -> int:
    return client.get("/_medcell/status").json["requests"]


def test_a_page_poll_brings_new_messages_without_counting_as_activity(app, staff, client_api):
    conv_id, _ = open_conversation(staff)
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    poll_url = re.search(r'data-poll="([^"]+)"', html).group(1)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    api, headers = client_api
    api.post(f"/api/v1/conversations/{conv_id}/messages", json={"body": "Neu"}, headers=headers)

    before = requests_counted(api)
    poll = staff.get(BASE + poll_url, headers={"X-CSRF-Token": csrf, "X-Medcell-Poll": "1"})
    assert poll.status_code == 200
    assert [m["body"] for m in poll.json["messages"]] == ["Neu"]
    assert requests_counted(api) == before


def test_the_page_script_marks_its_polls_and_takes_204_as_nothing_new():
    script = SCRIPT.read_text()
    assert '"X-Medcell-Poll": "1"' in script
    assert "response.status === 204" in script
    assert "document.hidden" in script and "visibilitychange" in script


def test_a_page_without_its_csrf_token_gets_no_poll_answer(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    assert csrf_of(page)
    url = f"{BASE}/api/v1/conversations/{conv_id}/messages"
    assert staff.get(url, headers={"X-Medcell-Poll": "1"}).status_code == 401


def test_a_poll_that_marks_messages_read_still_does_not_count_as_activity(app, staff, patient):
    conv_id, link = open_conversation(staff)
    patient.get(BASE + link)
    html = patient.get(f"{BASE}/patient/").get_data(as_text=True)
    poll_url = re.search(r'data-poll="([^"]+)"', html).group(1)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    home = staff.get(f"{BASE}/staff/c/{conv_id}")
    staff.post(f"{BASE}/staff/c/{conv_id}/messages", data={"body": "Befund", "csrf": csrf_of(home)})
    before = requests_counted(app.test_client())
    poll = patient.get(BASE + poll_url, headers={"X-CSRF-Token": csrf, "X-Medcell-Poll": "1"})
    assert [m["body"] for m in poll.json["messages"]] == ["Befund"]
    assert requests_counted(app.test_client()) == before
    # The poll showed it to the patient's visible page: staff now see "gelesen" under it.
    page = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert re.search(r'<p class="seen">gelesen</p>', page)


def test_the_lists_unread_poll_does_not_count_as_activity(app, staff):
    open_conversation(staff)
    html = staff.get(f"{BASE}/staff/").get_data(as_text=True)
    poll_url = re.search(r'data-unread-poll="([^"]+)"', html).group(1)
    csrf = re.search(r'id="convs" data-unread-poll="[^"]+" data-csrf="([^"]+)"', html).group(1)
    before = requests_counted(app.test_client())
    poll = staff.get(BASE + poll_url, headers={"X-CSRF-Token": csrf, "X-Medcell-Poll": "1"})
    assert poll.status_code == 200 and poll.json == {"conversations": {}, "total": 0}
    assert requests_counted(app.test_client()) == before
    # Without the page's CSRF token the cookie alone gets nothing.
    assert staff.get(BASE + poll_url, headers={"X-Medcell-Poll": "1"}).status_code == 401


def test_the_page_script_marks_the_unread_poll_too():
    script = SCRIPT.read_text()
    unread = script[script.index("function setupUnread") :]
    assert '"X-Medcell-Poll": "1"' in unread[: unread.index("function schedule")]

"""Times in the practice's time zone: in the PDF (German date format) and on the pages."""

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.facility.test_records import pdf_text

# 2027-07-01 10:15 UTC: 12:15 in Berlin (summer time), 06:15 in New York.
SUMMER = int(datetime(2027, 7, 1, 10, 15, tzinfo=ZoneInfo("UTC")).timestamp() * 1_000_000)


@pytest.fixture(autouse=True)
def summer(clock):
    clock.now = SUMMER


def post_and_delete(client, conversation, auth):
    base = f"/api/v1/conversations/{conversation['id']}"
    client.post(f"{base}/messages", json={"body": "Termin um 12 Uhr"}, headers=auth)
    msg = client.post(f"{base}/messages", json={"body": "Versehen"}, headers=auth).json
    assert client.delete(f"{base}/messages/{msg['id']}", headers=auth).status_code == 200
    return base


@pytest.mark.process
def test_the_pdf_says_the_practices_time_in_german_and_marks_a_deleted_message(
    client, staff_auth, conversation
):
    base = post_and_delete(client, conversation, staff_auth)
    text, _ = pdf_text(client.get(f"{base}/export?format=pdf", headers=staff_auth).data)
    assert "01.07.2027, 12:15 Uhr" in text
    assert "UTC" not in text
    assert "Vom Absender gelöscht · 01.07.2027, 12:15 Uhr" in text
    assert "Versehen" not in text


def test_fhir_marks_a_deleted_message_entered_in_error(client, staff_auth, conversation):
    base = post_and_delete(client, conversation, staff_auth)
    bundle = json.loads(client.get(f"{base}/export?format=fhir", headers=staff_auth).data)
    statuses = [e["resource"]["status"] for e in bundle["entry"]]
    assert statuses[-2:] == ["completed", "entered-in-error"]


def test_pages_show_the_practices_time_zone(make_app, clock):
    from tests.facility.conftest import ADMIN

    for zone, hour in (("Europe/Berlin", "12:15"), ("America/New_York", "06:15")):
        app = make_app(zone.split("/")[1].lower().replace("_", "-"), timezone=zone)
        client = app.test_client()
        page = client.get("https://x.test/login", headers={"Accept-Language": "de"})
        csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
        client.post(
            "https://x.test/login",
            data={"csrf": csrf, "username": ADMIN[0], "password": ADMIN[1]},
        )
        home = client.get("https://x.test/staff/new", headers={"Accept-Language": "de"})
        html = home.get_data(as_text=True)
        assert f'data-tz="{zone}"' in html
        conv = client.post(
            "https://x.test/staff/conversations",
            data={"csrf": html.split('name="csrf" value="')[1].split('"')[0], "title": "Zeit"},
        )
        assert conv.status_code == 201
        # The conversation's own link (the page links its letter for the desk too).
        conv_url = re.search(r'href="/staff/c/([^"/]+)"', conv.get_data(as_text=True)).group(1)
        shown = client.get(f"https://x.test/staff/c/{conv_url}").get_data(as_text=True)
        # The expiry: a whole number of days after now, so at the same time of day.
        expiry = shown.split('<time id="expires"')[1].split("</time>")[0]
        assert expiry.endswith(f", {hour} Uhr"), (zone, expiry)
        app.extensions["medcell"].store.close()

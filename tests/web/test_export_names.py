"""An export's file name says what it is — the conversation, whose, from when, which format —
in the reader's language and in characters every file system and mail program keeps."""

import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from .conftest import BASE, csrf_of, open_conversation

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def with_reference(staff, **fields) -> str:
    home = staff.get(f"{BASE}/staff/")
    data = {"title": "Schulter", "pin": "", "csrf": csrf_of(home)}
    data.update({f"ref_{k}": v for k, v in fields.items()})
    page = staff.post(f"{BASE}/staff/conversations", data=data)
    assert page.status_code == 201, page.get_data(as_text=True)
    return page.get_data(as_text=True).split("/staff/c/")[1][:22]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def names(client, url: str) -> tuple[str, str, str]:
    """The plain filename= and the decoded filename*= of a download, and the day it was made
    (the facility's clock is the real one here: read before and after, in case of midnight)."""
    before = today()
    response = client.get(url)
    after = today()
    header = response.headers["Content-Disposition"]
    assert header.startswith("attachment;"), header
    plain = re.search(r'filename="([^"]*)"', header)
    starred = re.search(r"filename\*=UTF-8''([^;]+)", header)
    assert plain and starred, header
    plain, starred = plain.group(1), unquote(starred.group(1))
    return plain, starred, before if before in plain else after


def test_a_fhir_export_is_named_by_the_patient_number_and_day(staff):
    conv_id = with_reference(staff, name="Jörg Weiß", number="P-88/2")
    plain, starred, day = names(staff, f"{BASE}/staff/c/{conv_id}/export?format=fhir")
    assert plain == starred == f"Unterhaltung-P-88-2-{day}-FHIR.json"
    assert SAFE.match(plain)


def test_without_a_number_the_name_is_spelled_in_safe_letters_and_english_reads_english(staff):
    conv_id = with_reference(staff, name="Jörg Weiß, Ayşe Kılıç")
    plain, starred, day = names(staff, f"{BASE}/staff/c/{conv_id}/export?format=fhir&lang=en")
    assert plain == starred == f"Conversation-Joerg-Weiss-Ayse-Kilic-{day}-FHIR.json"


def test_without_a_reference_the_name_still_says_what_and_when(staff):
    conv_id, _ = open_conversation(staff, title="Frau Beispiel, Ausschlag")
    plain, _, day = names(staff, f"{BASE}/staff/c/{conv_id}/export?format=fhir")
    # The title is the practice's free text (a diagnosis, perhaps): never in a file name.
    assert plain == f"Unterhaltung-{day}-FHIR.json"


def test_a_hostile_name_gives_a_short_safe_file_name(staff):
    conv_id = with_reference(staff, name='../../"; evil\\name ' + "x" * 150)
    plain, starred, _ = names(staff, f"{BASE}/staff/c/{conv_id}/export?format=fhir")
    assert plain == starred and SAFE.match(plain) and len(plain) <= 100
    assert ".." not in plain and plain.startswith("Unterhaltung-evil-name-xxx")


@pytest.mark.process
def test_a_pdf_export_is_named_the_same_way(staff):
    conv_id = with_reference(staff, number="4711")
    plain, starred, day = names(staff, f"{BASE}/staff/c/{conv_id}/export?format=pdf")
    assert plain == starred == f"Unterhaltung-4711-{day}.pdf"

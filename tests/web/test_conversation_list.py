"""The staff's list: search by title (and reference), unread filter, sort, paging, untitled ones."""

import re

from services.facility.core import conversation_list

from .conftest import BASE, browser, csrf_of, open_conversation


def titles(html: str) -> list[str]:
    """The visible names in the list, in order (tags inside a name stripped)."""
    names = re.findall(r'<li data-conv="[^"]+"[^>]*>\s*<a href="[^"]+">(.*?)</a>', html)
    return [re.sub(r"<[^>]+>", "", n) for n in names]


def listing(staff, **params) -> str:
    response = staff.get(f"{BASE}/staff/", query_string=params)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_search_finds_titles_whatever_the_case_and_word_order(app, staff, clock):
    for title in ("Knie rechts", "Schulter links", "Knie links"):
        clock.advance(1)
        open_conversation(staff, title)
    assert titles(listing(staff, q="knie")) == ["Knie links", "Knie rechts"]
    assert titles(listing(staff, q="LINKS knie")) == ["Knie links"]
    html = listing(staff, q="Hüfte")
    assert titles(html) == [] and "Keine Unterhaltung passt" in html


def test_unread_filter_shows_only_conversations_with_new_patient_messages(app, staff):
    conv_id, link = open_conversation(staff, "Mit Frage")
    open_conversation(staff, "Ohne Frage")
    patient = browser(app)
    page = patient.get(BASE + link, follow_redirects=True)
    patient.post(f"{BASE}/patient/messages", data={"body": "Frage", "csrf": csrf_of(page)})
    assert titles(listing(staff, unread="1")) == ["Mit Frage"]
    staff.get(f"{BASE}/staff/c/{conv_id}")
    assert titles(listing(staff, unread="1")) == []


def test_sorting_by_title_creation_and_expiry(app, staff, clock):
    for title in ("Beta", "alpha", ""):
        clock.advance(60)
        open_conversation(staff, title)
    by_title = titles(listing(staff, sort="title"))
    assert by_title[:2] == ["alpha", "Beta"] and by_title[2].startswith("Ohne Titel")
    assert titles(listing(staff, sort="created"))[1:] == ["alpha", "Beta"]
    assert titles(listing(staff, sort="expires"))[:2] == ["Beta", "alpha"]
    # Unknown sort keys fall back to the default, most recent activity first.
    assert titles(listing(staff, sort="; drop"))[1:] == ["alpha", "Beta"]


def test_untitled_conversations_are_told_apart_by_time_and_short_id(app, staff, clock):
    first, _ = open_conversation(staff, "")
    clock.advance(3600)
    second, _ = open_conversation(staff, "")
    names = titles(listing(staff))
    assert len(set(names)) == 2
    assert all(n.startswith("Ohne Titel · eröffnet") for n in names)
    html = listing(staff)
    assert f"#{first[:6]}" in html and f"#{second[:6]}" in html


def test_paging_keeps_the_search_and_shows_every_conversation_once(app, staff, clock):
    for i in range(45):
        clock.advance(1)
        open_conversation(staff, f"Termin {i:02d}")
    open_conversation(staff, "Anderes")
    seen = []
    for page in (1, 2, 3):
        html = listing(staff, q="termin", page=str(page))
        seen += titles(html)
        assert f"Seite {page} von 3" in html
    assert sorted(seen) == [f"Termin {i:02d}" for i in range(45)]
    second = listing(staff, q="termin", page="2")
    assert re.search(
        r'href="[^"]*q=termin[^"]*page=3[^"]*" rel="next"', second.replace("&amp;", "&")
    )
    assert titles(listing(staff, q="termin", page="99")) == titles(
        listing(staff, q="termin", page="3")
    )


def test_search_includes_a_patient_reference_when_a_summary_carries_one():
    summaries = [
        {
            "id": "a",
            "title": "",
            "last_activity": 2,
            "expires_at": 9,
            "reference": {"name": "Erika Mustermann", "number": "P-4711"},
        },
        {"id": "b", "title": "Erika?", "last_activity": 1, "expires_at": 8},
    ]
    found = conversation_list.select(summaries, {}, conversation_list.Query(text="mustermann"))
    assert [s["id"] for s in found] == ["a"]
    assert [
        s["id"]
        for s in conversation_list.select(summaries, {}, conversation_list.Query(text="p-4711"))
    ] == ["a"]

"""German by default, English from Accept-Language or an explicit choice; texts in one place."""

import re
from pathlib import Path

from services.facility.pages import i18n

from .conftest import BASE

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_german_is_the_default(app):
    page = app.test_client().get(f"{BASE}/login")
    html = page.get_data(as_text=True)
    assert '<html lang="de">' in html and "Anmeldung für das Team" in html


def test_english_comes_from_accept_language(app):
    client = app.test_client()
    page = client.get(f"{BASE}/login", headers={"Accept-Language": "en-GB,en;q=0.8,de;q=0.5"})
    html = page.get_data(as_text=True)
    assert '<html lang="en">' in html and "Staff login" in html


def test_unknown_languages_fall_back_to_german(app):
    page = app.test_client().get(f"{BASE}/login", headers={"Accept-Language": "fr-FR,fr"})
    assert "Anmeldung" in page.get_data(as_text=True)


def test_explicit_choice_wins_and_is_remembered(app):
    client = app.test_client()
    german_browser = {"Accept-Language": "de"}
    switched = client.get(f"{BASE}/login?lang=en", headers=german_browser)
    assert "Staff login" in switched.get_data(as_text=True)
    assert "__Host-mc_lang=en" in switched.headers["Set-Cookie"]
    later = client.get(f"{BASE}/login", headers=german_browser)
    assert "Staff login" in later.get_data(as_text=True)
    back = client.get(f"{BASE}/login?lang=de", headers=german_browser)
    assert "Anmeldung" in back.get_data(as_text=True)


def test_switch_link_points_to_the_other_language(app):
    html = app.test_client().get(f"{BASE}/login").get_data(as_text=True)
    assert 'href="/login?lang=en"' in html


def test_both_languages_have_exactly_the_same_texts():
    assert set(i18n.DE) == set(i18n.EN)
    for key in i18n.DE:
        assert re.findall(r"{(\w+)}", i18n.DE[key]) == re.findall(
            r"{(\w+)}", i18n.EN[key]
        ) or sorted(re.findall(r"{(\w+)}", i18n.DE[key])) == sorted(
            re.findall(r"{(\w+)}", i18n.EN[key])
        ), key


def test_every_text_a_page_asks_for_exists():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_.]+)'", template.read_text()))
    code = Path(i18n.__file__).parent.glob("web*.py")
    for module in code:
        used |= set(re.findall(r"\bt\(\s*\"([a-z_.]+)\"", module.read_text()))
    dynamic = {key for key in used if key.endswith((".", "_"))}
    missing = {key for key in used - dynamic if key not in i18n.DE}
    assert not missing


def test_formatting_follows_the_language():
    assert i18n.format_size(1536 * 1024, "de") == "1,5 MB"
    assert i18n.format_size(1536 * 1024, "en") == "1.5 MB"
    assert i18n.format_duration(7 * 86400, "de") == "7 Tage"
    assert i18n.format_duration(3600, "en") == "1 hour"

"""The shared rules and log format every image carries."""

import json
import logging
import sys

import pytest

from medcell_common.logs import JsonFormatter
from medcell_common.rules import check_slug, parse_duration, parse_retention


@pytest.mark.parametrize("slug", ["a", "0", "praxis-mueller", "x" * 32])
def test_contract_slugs_are_accepted(slug):
    assert check_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "-a", "a-", "A", "x" * 33, "a\n", "a.b", None])
def test_other_slugs_are_refused_including_a_trailing_newline(slug):
    with pytest.raises(ValueError, match="invalid slug"):
        check_slug(slug)


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("12h", 43200), ("7d", 604800)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["07d", "0s", "00m", "7d\n", " 7d", "7", "7w", "1.5d", "", None])
def test_leading_zeros_and_other_forms_are_refused(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_retention_is_at_most_seven_days():
    assert parse_retention("168h") == 7 * 86400
    with pytest.raises(ValueError, match="longer than 7d"):
        parse_retention("8d")


def _record(msg, args=None, exc_info=None, **extra):
    record = logging.LogRecord("medcell.x", logging.WARNING, "f.py", 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_a_dict_message_is_rendered_as_its_fields_encoded_once():
    line = json.loads(JsonFormatter().format(_record({"event": "routes_applied", "n": 2})))
    assert line["event"] == "routes_applied" and line["n"] == 2
    assert line["level"] == "warning" and line["ts"].endswith("Z")


def test_a_text_message_becomes_the_event_with_extra_fields():
    record = _record("request %s", ("done",), fields={"status": 200})
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "request done" and line["status"] == 200


def test_an_exception_keeps_its_type_but_not_its_text():
    try:
        raise KeyError("/p/secret-token")
    except KeyError:
        record = _record("failed", exc_info=sys.exc_info())
    text = JsonFormatter().format(record)
    assert json.loads(text)["error"] == "KeyError"
    assert "secret-token" not in text

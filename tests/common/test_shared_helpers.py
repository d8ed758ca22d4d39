"""The helpers every image shares: the atomic file writer, the ISO time, the shared names."""

import json
import stat

import pytest

from medcell_common.files import write_atomic
from medcell_common.interfaces import WAKE_STATUS, Label, RouteState, Status, WakeError
from medcell_common.times import iso_utc


def test_write_atomic_replaces_the_file_with_the_mode_asked_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "routes.json"
    target.write_text("old")
    write_atomic(target, '{"new": 1}', mode=0o600)
    assert target.read_text() == '{"new": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["routes.json"]


def test_write_atomic_that_fails_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "applied.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # neither bytes nor text
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["applied.json"]


def test_iso_utc_is_utc_to_the_second():
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1_700_000_000.9) == "2023-11-14T22:13:20Z"


def test_shared_names_are_the_plain_strings_on_the_wire():
    assert json.dumps({Label.FACILITY: RouteState.ASLEEP}) == '{"medcell.facility": "asleep"}'
    assert Status.RUNNING == "running" and f"{Label.ROLE}=gateway" == "medcell.role=gateway"
    assert WAKE_STATUS[WakeError.FACILITY_STOPPED] == 409


def test_iso_utc_keeps_milliseconds_where_asked():
    assert iso_utc(1_700_000_000.25, milliseconds=True) == "2023-11-14T22:13:20.250Z"
    assert iso_utc(0, milliseconds=True) == "1970-01-01T00:00:00.000Z"


def test_format_duration_is_the_shortest_exact_text_parse_duration_reads_back():
    from medcell_common.rules import format_duration, parse_duration

    for seconds in (1, 59, 60, 90 * 60, 3600, 86400, 7 * 86400, 86400 + 1):
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(5400) == "90m" and format_duration(86400) == "1d"

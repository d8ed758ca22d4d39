"""Numbers from a process that may lie (medcell_common.strictjson): finite, typed, in range."""

import math

import pytest

from medcell_common import strictjson
from medcell_common.strictjson import StrictJSONError


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", "[-1e400]"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(StrictJSONError):
        strictjson.loads(text)


def test_non_finite_numbers_can_be_marked_instead_of_spoiling_the_whole_document():
    marker = object()
    raw = strictjson.loads('{"a": NaN, "b": 1e999, "c": 2.5}', nonfinite=marker)
    assert raw == {"a": marker, "b": marker, "c": 2.5}


def test_nan_is_never_written():
    with pytest.raises(ValueError):
        strictjson.dumps({"wake_at": math.nan})


def test_fields_take_only_their_own_type_and_range():
    assert strictjson.integer(3, "n") == 3
    assert strictjson.number(2, "x", low=0, high=5) == 2.0
    assert strictjson.flag(False, "b") is False
    for bad in (True, 1.5, "3", -1, 2**60):
        with pytest.raises(StrictJSONError):
            strictjson.integer(bad, "n")
    for bad in (True, "1", math.nan, math.inf, 10**400, -0.5, 6):
        with pytest.raises(StrictJSONError):
            strictjson.number(bad, "x", low=0, high=5)
    for bad in (0, 1, "true", None):
        with pytest.raises(StrictJSONError):
            strictjson.flag(bad, "b")

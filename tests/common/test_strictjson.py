"""JSON from a process that may lie: only strict JSON of a bounded size is read."""

import pytest

from medcell_common import strictjson


def test_strict_json_is_read():
    assert strictjson.loads(b'{"a": [1, 2.5, null, "x"]}', 100) == {"a": [1, 2.5, None, "x"]}


@pytest.mark.parametrize(
    "data",
    [b"NaN", b'{"a": Infinity}', b"[-Infinity]", b"[" * 100_000 + b"]" * 100_000, b"\xff", b"{"],
)
def test_anything_else_is_a_value_error(data):
    with pytest.raises(ValueError):
        strictjson.loads(data, 1_000_000)


def test_more_than_the_limit_is_not_parsed():
    with pytest.raises(ValueError, match="more than 10 bytes"):
        strictjson.loads(b'"' + b"x" * 10 + b'"', 10)

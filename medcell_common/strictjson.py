"""Strict JSON for what one component reads from another it does not trust (a facility process).

Python's `json` accepts `NaN`, `Infinity` and `1e999` (which becomes infinity), and `json.dumps`
writes them back: one such value compares false with everything, so a deadline of NaN is never
"due" and never "later". Here they are refused on the way in and on the way out, and the field
helpers take a value only when it has the right type (a bool is not a number) and lies in range.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_COUNT = 2**53  # counts above this are not exact in a float, nor honest


class StrictJSONError(ValueError):
    """The text is not strict JSON, or a field does not have the type and range it must."""


_REFUSE = object()


def loads(data: str | bytes, max_bytes: int | None = None, *, nonfinite: Any = _REFUSE) -> Any:
    """Parse JSON refusing NaN, Infinity, numbers too large for a float, nesting deeper than the
    parser's recursion allows, and (if given) more than `max_bytes`.

    With `nonfinite` given, such a number becomes that value instead (a state file keeps its other
    fields, and the caller sees that one field is unusable).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise StrictJSONError(f"more than {max_bytes} bytes")

    def constant(name: str) -> Any:
        if nonfinite is _REFUSE:
            raise StrictJSONError(f"{name} is not a JSON number")
        return nonfinite

    def number(text: str) -> Any:
        value = float(text)
        if not math.isfinite(value):
            return constant(text)
        return value

    try:
        return json.loads(data, parse_constant=constant, parse_float=number)
    except StrictJSONError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise StrictJSONError(f"not JSON: {type(e).__name__}") from e


def dumps(value: Any, **options: Any) -> str:
    """`json.dumps` that raises ValueError instead of writing NaN or Infinity."""
    return json.dumps(value, allow_nan=False, **options)


def integer(value: Any, name: str, low: int = 0, high: int = MAX_COUNT) -> int:
    """An int (never a bool) in [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise StrictJSONError(f"{name} must be a whole number from {low} to {high}")
    return value


def number(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite int or float (never a bool), at least `low` and at most `high` when given."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise StrictJSONError(f"{name} must be a number")
    try:
        result = float(value)
    except OverflowError as e:  # an int beyond any float
        raise StrictJSONError(f"{name} must be finite") from e
    if not math.isfinite(result):
        raise StrictJSONError(f"{name} must be finite")
    if (low is not None and result < low) or (high is not None and result > high):
        raise StrictJSONError(f"{name} is out of range")
    return result


def flag(value: Any, name: str) -> bool:
    """A JSON true or false, nothing that merely converts to one."""
    if not isinstance(value, bool):
        raise StrictJSONError(f"{name} must be true or false")
    return value

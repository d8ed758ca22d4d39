"""JSON from a process that may be hostile: bounded in size, no NaN or Infinity, no deep nesting."""

import json


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, max_bytes: int) -> object:
    """Parse `data`; ValueError when it is longer than `max_bytes`, not strict JSON, or nested
    deeper than the parser's recursion allows."""
    if len(data) > max_bytes:
        raise ValueError(f"more than {max_bytes} bytes")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError as e:  # "[[[[…" a hundred thousand deep
        raise ValueError("nested too deeply") from e

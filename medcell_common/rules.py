"""The contract's slug and duration rules, defined once for the CLI, the gateway and the facility.

Every pattern is applied with `fullmatch`, so a trailing newline is never accepted.
"""

import re

SLUG = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
SLUG_RE = re.compile(SLUG)
# A positive whole number without leading zeros (so `07d` and `0s` are refused) and one unit.
DURATION_RE = re.compile(r"([1-9][0-9]{0,6})([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_RETENTION = 7 * 86400


def check_slug(text: str) -> str:
    """Return the slug, or raise ValueError naming the rule it breaks."""
    if not isinstance(text, str) or not SLUG_RE.fullmatch(text):
        raise ValueError(
            f"invalid slug {text!r}: use 1-32 lowercase letters, digits and inner hyphens"
        )
    return text


def parse_duration(text: str) -> int:
    """Seconds in a duration like `30s`, `12h` or `7d`; ValueError otherwise."""
    match = DURATION_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a whole number without leading zeros "
            "and s, m, h or d (e.g. 7d)"
        )
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_retention(text: str) -> int:
    """A retention in seconds: a duration of at most 7 days; ValueError otherwise."""
    seconds = parse_duration(text)
    if seconds > MAX_RETENTION:
        raise ValueError(f"retention {text} is longer than 7d, the most medcell keeps data")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact duration text for a number of seconds (the inverse of parse_duration:
    `86400` is `1d`, `5400` is `90m`)."""
    for unit in ("d", "h", "m"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"

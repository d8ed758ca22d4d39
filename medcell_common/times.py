"""Moments as the parts of medcell write them: ISO 8601 in UTC, to the second."""

import time
from datetime import UTC, datetime


def iso_utc(seconds: float | None = None, milliseconds: bool = False) -> str:
    """Unix seconds (default: now) as `2026-01-31T12:00:00Z`; fractions are dropped, or kept to
    the millisecond (`2026-01-31T12:00:00.250Z`) where an API answers with them."""
    moment = time.time() if seconds is None else seconds
    if milliseconds:
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Opening hours as a facility reports them, and when to wake it before its practice opens.

A facility tells the supervisor, in its status, the starts of its opening periods as minutes after
Monday 00:00 in the installation's time zone (MEDCELL_TIMEZONE). Like everything a facility says,
they are checked here before use: a list of at most MAX_STARTS whole numbers within one week;
anything else counts as no hours at all. The wake before an opening is spread over the last
minutes before it, a fixed share per facility and day, so that opening time is not a storm.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_WEEK = 7 * 24 * 60
MAX_STARTS = 7 * 6  # six opening periods a day is more than any practice has
PRE_OPEN_WINDOW = 20 * 60.0  # wakes before an opening are spread over this many seconds
MIN_LEAD = 60.0  # and come at least this long before it: a wake takes a moment


def parse_opens(raw: object) -> tuple[int, ...]:
    """The reported opening starts, sorted and unique; () for anything that is not a short list
    of whole minutes within one week."""
    if not isinstance(raw, list) or len(raw) > MAX_STARTS:
        return ()
    starts = set()
    for value in raw:
        if type(value) is not int or not 0 <= value < MINUTES_PER_WEEK:
            return ()
        starts.add(value)
    return tuple(sorted(starts))


def next_opening(opens: tuple[int, ...] | list[int], now: float, zone: ZoneInfo) -> float | None:
    """Unix time of the first opening start after `now`, or None without opening hours."""
    if not opens:
        return None
    today = datetime.fromtimestamp(now, zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        for start in opens:
            weekday, minute = divmod(start, 24 * 60)
            if weekday != day.weekday():
                continue
            at = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).timestamp()
            if at > now:
                return at
    return None


def wake_before(slug: str, opens_at: float, window: float) -> float:
    """When to wake `slug` for the opening at `opens_at`: between MIN_LEAD and `window` seconds
    before it, at a point fixed by the facility and the day (spread, and the same after a
    restart of the supervisor)."""
    day = int(opens_at // 86400)
    digest = hashlib.sha256(f"{slug}/{day}".encode()).digest()
    share = int.from_bytes(digest[:4], "big") / 2**32
    shortest = min(MIN_LEAD, max(0.0, window))
    return opens_at - shortest - (max(0.0, window) - shortest) * share

"""When the practice opens, read from the opening hours staff write for the contact page.

The hours are free text ("Mo–Fr 8–12 Uhr, Di/Do 14–18 Uhr", "Mon-Fri 8am-5pm"). What the
supervisor needs from them is only when each opening period starts, so it can wake the facility
shortly before: minutes after Monday 00:00 in the practice's local time, nothing else. Text that
names no time gives none; day names are German or English; times without days mean Monday to
Friday; `täglich` / `daily` means every day.
"""

import re

MINUTES_PER_WEEK = 7 * 24 * 60
MAX_STARTS = 7 * 6

_DAYS = {
    "mo": 0, "montag": 0, "mon": 0, "monday": 0,
    "di": 1, "dienstag": 1, "tu": 1, "tue": 1, "tues": 1, "tuesday": 1,
    "mi": 2, "mittwoch": 2, "we": 2, "wed": 2, "wednesday": 2,
    "do": 3, "donnerstag": 3, "th": 3, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3,
    "fr": 4, "freitag": 4, "fri": 4, "friday": 4,
    "sa": 5, "samstag": 5, "sat": 5, "saturday": 5,
    "so": 6, "sonntag": 6, "su": 6, "sun": 6, "sunday": 6,
}  # fmt: skip
_EVERY_DAY = {"täglich", "taeglich", "daily"}
_DASH = r"\s*(?:-|–|—|bis|to|until)\s*"
_CLOCK = r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?\s*(?:uhr|h\b)?"
_TOKEN = re.compile(
    rf"(?P<times>{_CLOCK}{_DASH}{_CLOCK})"
    rf"|(?P<range>[a-zäö]+)\.?{_DASH}(?P<range_end>[a-zäö]+)\.?"
    r"|(?P<word>[a-zäö]+)\.?",
    re.IGNORECASE,
)


def opening_starts(hours: str) -> list[int]:
    """The starts of the opening periods, as minutes after Monday 00:00, sorted; [] if none."""
    return sorted({start for start, _ in opening_periods(hours)})[:MAX_STARTS]


def opening_periods(hours: str) -> list[tuple[int, int]]:
    """The opening periods as (start, end) minutes after Monday 00:00, sorted; [] if none."""
    periods: set[tuple[int, int]] = set()
    days: list[int] = []
    after_times = True  # a day named after a time range begins a new group of days
    for token in _TOKEN.finditer(hours[:300].lower()):
        if token.group("times"):
            start = _minutes(token.group(2), token.group(3), token.group(4))
            end = _minutes(token.group(5), token.group(6), token.group(7))
            if start is None or end is None or end <= start:
                continue
            for day in days or range(5):
                periods.add((day * 24 * 60 + start, day * 24 * 60 + end))
            after_times = True
            continue
        named = _named_days(token)
        if named is None:
            continue
        days = named if after_times else days + named
        after_times = False
    return sorted(periods)


def closed_for(hours: str, minute: int) -> int | None:
    """How many minutes the practice has been closed at `minute` of the week (after Monday
    00:00); None while open, or when the hours name no time (then nobody knows)."""
    periods = opening_periods(hours)
    if not periods:
        return None
    if any(start <= minute < end for start, end in periods):
        return None
    return min((minute - end) % MINUTES_PER_WEEK for _, end in periods)


def _named_days(token: re.Match) -> list[int] | None:
    if token.group("range"):
        first, last = _DAYS.get(token.group("range")), _DAYS.get(token.group("range_end"))
        if first is None or last is None:
            return None
        return [(first + i) % 7 for i in range((last - first) % 7 + 1)]
    word = token.group("word")
    if word in _EVERY_DAY:
        return list(range(7))
    return [_DAYS[word]] if word in _DAYS else None


def _minutes(hour: str, minute: str | None, half: str | None) -> int | None:
    h, m = int(hour), int(minute or 0)
    if half:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if half.startswith("p") else 0)
    if h > 24 or m > 59 or (h == 24 and m):
        return None
    return h * 60 + m

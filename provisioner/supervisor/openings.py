"""Wakes before opening time: each sleeping practice is woken in the minutes before it opens.

The first patients of the day then find their practice awake instead of all waking it at the same
moment. The opening starts come from the facility's own status (kept in its state file while it
sleeps); each facility's wake falls at its own point within the window before the opening
(opening.wake_before), so a hundred practices opening at 8:00 wake one after another.

Runs in the scheduler's thread, after each tick, and reads the scheduler's entries only there.
It never makes room: a pre-opening wake that finds the host at its awake cap is skipped (the
first request wakes the facility as usual), and it keeps the wake queue to the scheduler's own
share (OWN_WAKES), so requests always find room in it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from provisioner.host import opening
from provisioner.host.config import Config
from provisioner.supervisor.jobs import JobPool, QueueFull
from provisioner.supervisor.logs import event
from provisioner.supervisor.scheduler import OWN_WAKES, Entry

SCAN_INTERVAL = 60.0  # how often the plan is made again from the entries
IDLE_SHARE = 0.75  # the window is at most this share of the idle time: awake when it opens


class OpeningWakes:
    def __init__(
        self,
        config: Config,
        entries: Callable[[], dict[str, Entry]],
        wakes: JobPool,
    ):
        self.config, self.entries, self.wakes = config, entries, wakes
        try:
            self.zone: ZoneInfo | None = ZoneInfo(config.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            # No time zone data: the supervisor still does everything else; requests wake as usual.
            event("opening_wakes_off", logging.WARNING, timezone=config.timezone)
            self.zone = None
        self.plan: dict[str, tuple[float, float]] = {}  # slug -> (wake at, opens at)
        self._woken_for: dict[str, float] = {}  # slug -> the opening it was woken for
        self._next_scan = 0.0

    def tick(self, now: float) -> None:
        if self.zone is None:
            return
        if now >= self._next_scan:
            self._scan(now)
        for slug, (wake_at, opens_at) in sorted(self.plan.items(), key=lambda item: item[1]):
            if wake_at > now:
                continue
            entry = self.entries().get(slug)
            if entry is None or entry.mode != "asleep" or now >= opens_at:
                del self.plan[slug]
                continue
            if self.wakes.pending() >= OWN_WAKES:
                return  # the rest on a later tick
            try:
                self.wakes.submit(slug, "opening")
            except QueueFull:
                return
            del self.plan[slug]
            self._woken_for[slug] = opens_at
            event("opening_wake", logging.INFO, slug=slug, opens_in=round(opens_at - now))

    def _scan(self, now: float) -> None:
        """Plan every sleeping facility whose pre-opening wake falls before the next scan."""
        self._next_scan = now + SCAN_INTERVAL
        self._woken_for = {s: t for s, t in self._woken_for.items() if t > now}
        plan = {}
        for slug, entry in self.entries().items():
            if entry.mode != "asleep" or not entry.st.opens:
                continue
            idle = entry.st.idle_timeout(self.config)
            if idle <= 0:
                continue  # `--idle never`: it does not sleep in the first place
            opens_at = opening.next_opening(entry.st.opens, now, self.zone)  # type: ignore[arg-type]
            if opens_at is None or self._woken_for.get(slug) == opens_at:
                continue
            window = min(opening.PRE_OPEN_WINDOW, IDLE_SHARE * idle)
            wake_at = opening.wake_before(slug, opens_at, window)
            if wake_at < now + SCAN_INTERVAL:
                plan[slug] = (wake_at, opens_at)
        self.plan = plan

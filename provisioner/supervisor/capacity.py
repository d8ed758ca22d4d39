"""The cap on awake facilities per host: who is awake, when each was last used, who makes room.

Every wake takes a slot (`reserve`); a full host first puts the least recently used awake
facilities back to sleep (`victims`, in that order), never one that is waking, being put to sleep
already, or was used within the grace period. Whether a victim may really sleep is decided by
lifecycle.put_to_sleep on a fresh status: nothing in flight, idle for the grace period at least.

What is awake is learnt from events alone, so the scheduler's own state stays its own: a wake
that succeeded, a sleep that succeeded, and every status a probe reads (the scheduler probes
each awake facility at least every PROBE_INTERVAL). A facility nobody has heard of for STALE
seconds (put to sleep or stopped from the CLI, deleted) is forgotten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from provisioner.supervisor.scheduler import PROBE_INTERVAL

STALE = 3 * PROBE_INTERVAL
GRACE = 60.0  # seconds without a request before a facility may be put to sleep to make room


class AwakeFacilities:
    """Thread-safe: the wake pool's threads and the scheduler's thread both report here."""

    def __init__(self, cap: int, clock: Callable[[], float]):
        self.cap, self.clock = cap, clock
        self._lock = threading.Lock()
        self._used: dict[str, float] = {}  # awake slug -> when it last had a request
        self._heard: dict[str, float] = {}  # awake slug -> when it was last seen awake
        self._waking: set[str] = set()
        self._leaving: set[str] = set()  # being put to sleep to make room

    def count(self) -> int:
        """Awake facilities and wakes under way: the slots taken."""
        with self._lock:
            self._prune()
            return len(self._used) + len(self._waking)

    def reserve(self, slug: str) -> bool:
        """Take a slot for waking `slug`; False when the host is full (awake already is fine)."""
        with self._lock:
            self._prune()
            if slug in self._used or slug in self._waking:
                return True
            if len(self._used) + len(self._waking) >= self.cap:
                return False
            self._waking.add(slug)
            return True

    def woke(self, slug: str) -> None:
        """It answers now, woken for a request or its deadline: as good as just used."""
        now = self.clock()
        with self._lock:
            self._waking.discard(slug)
            self._used[slug] = self._heard[slug] = now

    def release(self, slug: str) -> None:
        """A wake that failed gives its slot back."""
        with self._lock:
            self._waking.discard(slug)

    def seen(self, slug: str, idle_seconds: float) -> None:
        """A probe read its status: it is awake and had its last request `idle_seconds` ago."""
        now = self.clock()
        idle = min(max(idle_seconds, 0.0), 10 * 365 * 86400.0)  # told by a facility: bounded
        with self._lock:
            if slug not in self._leaving:
                self._used[slug] = now - idle
                self._heard[slug] = now

    def slept(self, slug: str) -> None:
        with self._lock:
            self._used.pop(slug, None)
            self._heard.pop(slug, None)
            self._leaving.discard(slug)

    def victims(self, busy: Callable[[str], bool]) -> list[str]:
        """Awake facilities that might sleep to make room, least recently used first."""
        limit = self.clock() - GRACE
        with self._lock:
            self._prune()
            found = sorted(
                (used, slug)
                for slug, used in self._used.items()
                if used <= limit and slug not in self._leaving and not busy(slug)
            )
            return [slug for _, slug in found]

    def claim(self, slug: str) -> bool:
        """Mark `slug` as being put to sleep for room; False if another wake claimed it."""
        with self._lock:
            if slug in self._leaving or slug not in self._used:
                return False
            self._leaving.add(slug)
            return True

    def unclaim(self, slug: str, used_now: bool) -> None:
        """It stays awake after all (in use, or could not be stopped)."""
        with self._lock:
            self._leaving.discard(slug)
            if used_now and slug in self._used:
                self._used[slug] = self.clock()

    def _prune(self) -> None:
        limit = self.clock() - STALE
        for slug in [s for s, t in self._heard.items() if t < limit and s not in self._leaving]:
            del self._heard[slug]
            self._used.pop(slug, None)

"""The relay's per-facility rate limit: token buckets, e.g. 30 mails a minute and 1000 a day.

A mail is sent only when every bucket of its facility has a token. What the limit holds back is
not lost: it stays in the facility's outbox and is tried again at the next drain, until the
facility drops it at the outbox's maximum age. The buckets live in memory only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class _Bucket:
    def __init__(self, count: int, seconds: int, now: float):
        self.capacity, self.per_second = float(count), count / seconds
        self.tokens, self.at = float(count), now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.at)  # a clock set back refills nothing
        self.tokens = min(self.capacity, self.tokens + elapsed * self.per_second)
        self.at = now


class MailLimit:
    """Token buckets per facility; `take(slug, limits, wanted)` says how many may go now."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[tuple[tuple[int, int], ...], list[_Bucket]]] = {}

    def take(self, slug: str, limits: tuple[tuple[int, int], ...], wanted: int) -> int:
        """Reserve up to `wanted` mails for `slug` under `limits` ((count, seconds) pairs)."""
        with self._lock:
            now = self.clock()
            known = self._buckets.get(slug)
            if known is None or known[0] != limits:  # new facility, or the operator's new limit
                known = (limits, [_Bucket(n, s, now) for n, s in limits])
                self._buckets[slug] = known
            buckets = known[1]
            for bucket in buckets:
                bucket.refill(now)
            granted = max(0, min([wanted, *(int(b.tokens) for b in buckets)]))
            for bucket in buckets:
                bucket.tokens -= granted
            return granted

    def give_back(self, slug: str, count: int) -> None:
        """Return tokens reserved for mails that were not sent after all (the server failed)."""
        with self._lock:
            known = self._buckets.get(slug)
            if known is not None and count > 0:
                for bucket in known[1]:
                    bucket.tokens = min(bucket.capacity, bucket.tokens + count)

"""Idle accounting of one process's requests: what the supervisor reads to decide on sleep."""

import threading
import time
from collections.abc import Callable


class Activity:
    """Thread-safe counters of one process's requests (one gunicorn worker serves a facility)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.inflight = 0
        self.requests = 0
        self._counted_inflight = 0
        self._last_done = monotonic()

    def begin(self, counted: bool) -> None:
        with self._lock:
            self.inflight += 1
            if counted:
                # Counted at the start, so a request arriving while the supervisor puts the
                # facility to sleep changes `requests` before its second look.
                self.requests += 1
                self._counted_inflight += 1

    def end(self, counted: bool) -> None:
        with self._lock:
            self.inflight -= 1
            if counted:
                self._counted_inflight -= 1
                self._last_done = self._monotonic()

    def snapshot(self) -> dict:
        with self._lock:
            idle = 0.0 if self._counted_inflight else self._monotonic() - self._last_done
            return {
                "inflight": self.inflight,
                "requests": self.requests,
                "idle_seconds": round(max(0.0, idle), 3),
            }

"""Request counts and durations from nginx's own access log, for the supervisor's /metrics.

nginx sends one syslog datagram per request (templates/nginx.conf, `log_format medcell_count`):
its category (a word of a fixed set), its status and its duration; nothing else. The receiver
counts them and writes the running totals to `requests.json` in the gateway's run directory at
most once a second, where the supervisor of the same host reads them at each scrape. Nothing sits
on the request path: nginx hands the datagram to the kernel and goes on.
"""

import json
import os
import time

from medcell_common.files import write_atomic
from medcell_common.interfaces import GATEWAY_DURATION_BUCKETS, GATEWAY_REQUEST_CATEGORIES

from . import eventlog
from .datagrams import DatagramReceiver

WRITE_EVERY = 1.0  # seconds between snapshots at most


def parse(datagram: bytes) -> tuple[str, int, float] | None:
    """(category, status, seconds) from one datagram; None if it is not one of ours."""
    _, _, line = datagram.rpartition(b"nginx: ")
    fields = line.decode("ascii", "replace").split()
    if len(fields) != 3 or fields[0] not in GATEWAY_REQUEST_CATEGORIES:
        return None
    category, status, seconds = fields
    if not status.isdigit() or not 100 <= int(status) <= 599:
        return None
    try:
        duration = float(seconds)
    except ValueError:
        return None
    if not 0 <= duration < 86400:
        return None
    return category, int(status), duration


class RequestCounter(DatagramReceiver):
    """A unix datagram socket nginx's counting access_log points at, read on a daemon thread."""

    thread_name = "nginx-requests"

    def __init__(self, path: str, snapshot: str):
        super().__init__(path)
        self.snapshot = snapshot
        self.sock.settimeout(WRITE_EVERY)
        self.counts: dict[str, int] = {}  # "category status" -> requests
        self.buckets = [0] * (len(GATEWAY_DURATION_BUCKETS) + 1)
        self.sum = 0.0
        self._dirty = True
        self._written = 0.0

    def start(self) -> "RequestCounter":
        self._write()
        return super().start()

    def count(self, category: str, status: int, seconds: float) -> None:
        key = f"{category} {status}"
        self.counts[key] = self.counts.get(key, 0) + 1
        index = next(
            (i for i, bound in enumerate(GATEWAY_DURATION_BUCKETS) if seconds <= bound),
            len(GATEWAY_DURATION_BUCKETS),
        )
        self.buckets[index] += 1
        self.sum += seconds
        self._dirty = True

    def _run(self) -> None:
        while True:
            try:
                parsed = parse(self.sock.recv(4096))
                if parsed is not None:
                    self.count(*parsed)
            except TimeoutError:
                pass
            except OSError:
                return
            if self._dirty and time.monotonic() - self._written >= WRITE_EVERY:
                self._write()

    def _write(self) -> None:
        data = {"counts": self.counts, "duration_buckets": self.buckets, "duration_sum": self.sum}
        try:
            os.makedirs(os.path.dirname(self.snapshot), exist_ok=True)
            write_atomic(self.snapshot, json.dumps(data))
        except OSError as e:
            eventlog.event("request_counts_unwritable", "warning", error=type(e).__name__)
        self._dirty, self._written = False, time.monotonic()

"""The supervisor's Prometheus endpoint: `GET /metrics` on MEDCELL_METRICS_BIND.

Content-free by construction: every series is a count, a duration or a size, and the only label
values are fixed words (states, causes) and facility slugs, which every URL shows already. Nothing
a facility reports reaches a label: its numbers are bounded and validated before they are counted.
"""

from __future__ import annotations

import json
import math
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from medcell_common import strictjson
from medcell_common.interfaces import (
    DELETION_LAG_BUCKETS,
    GATEWAY_DURATION_BUCKETS,
    GATEWAY_REQUEST_CATEGORIES,
    Desired,
    Health,
)
from medcell_common.receipts import REASONS
from medcell_common.strictjson import StrictJSONError
from provisioner.host.facility_http import (
    DEADLINE_HORIZON,
    Deletions,
    FacilityStatus,
    parse_deletions,
)
from provisioner.host.home import write_json_atomic
from provisioner.host.validation import SLUG_RE
from provisioner.supervisor.logs import event

FACILITY_STATES = ("running", "asleep", "stopped", "unhealthy")
WAKE_CAUSES = ("request", "deadline", "opening", "recover")
# Wakes take seconds (a container's start); the buckets reach the wake timeout.
WAKE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# A `_created` series per counter only doubles the scrape; Prometheus needs none of them.
disable_created_metrics()

MAX_CONNECTIONS = 8  # scrapes at once; more are closed at once (a scraper retries)
REQUEST_TIMEOUT = 5.0  # seconds a scraper has to send its request line and headers
# More conversations deleted between two probes of one facility than this is not believed: the
# report becomes the new baseline and nothing of it is counted (a hostile or broken facility).
MAX_DELETIONS_PER_REPORT = 100_000
PROMISE_SECONDS = 60.0  # every conversation is gone within this after its expiry


class Metrics:
    """Every series the supervisor exports, in its own registry (nothing global)."""

    def __init__(
        self,
        node: Callable[[], str | None] = lambda: None,
        baselines: Path | None = None,
        gateway_requests: Path | None = None,
    ):
        self.registry = CollectorRegistry(auto_describe=True)
        self.node = node  # cluster mode: this node's name, once it is known
        self.deletions = DeletionTally(baselines)
        self.wake_seconds = Histogram(
            "medcell_wake_seconds",
            "Seconds from a wake's start until the facility answered",
            buckets=WAKE_BUCKETS,
            registry=None,
        )
        self.wakes = Counter(
            "medcell_wakes", "Facilities woken, by cause", ["cause"], registry=None
        )
        for cause in WAKE_CAUSES:
            self.wakes.labels(cause)
        self.mail_queue = Gauge(
            "medcell_mail_queue",
            "Mails waiting in the facilities' outboxes, as their last status said",
            registry=None,
        )
        self.mail_failures = Counter(
            "medcell_mail_failures", "Relay attempts that failed (SMTP, settings)", registry=None
        )
        self._outboxes: dict[str, int] = {}
        self._storage: dict[str, tuple[int, int]] = {}  # facility -> (used, quota) bytes
        self._lock = threading.Lock()
        self._states: Mapping[str, int] = {}
        for series in (self.wake_seconds, self.wakes, self.mail_queue, self.mail_failures):
            self.registry.register(series)
        self.registry.register(_FacilityStates(lambda: self._states))
        self.registry.register(self.deletions)
        self.registry.register(_Storage(self._storage_now))
        self._backup_ages: Callable[[], Mapping[str, float]] = dict
        self.registry.register(_BackupAges(lambda: self._backup_ages()))
        self.registry.register(GatewayRequests(gateway_requests))

    def watch_backups(self, ages: Callable[[], Mapping[str, float]]) -> None:
        """Where `medcell_backup_age_seconds{facility}` is read at each scrape (scheduled
        backups, cluster mode with MEDCELL_BACKUP_EVERY)."""
        self._backup_ages = ages

    def set_states(self, entries: Mapping[str, object]) -> None:
        """`medcell_facilities{state}` from the scheduler's entries (in its own thread); a
        facility no longer among them leaves the other series too."""
        self._states = facility_states(entries.values())
        with self._lock:
            for slug in [s for s in (*self._outboxes, *self._storage) if s not in entries]:
                self._outboxes.pop(slug, None)
                self._storage.pop(slug, None)
            self.mail_queue.set(sum(self._outboxes.values()))

    def _storage_now(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self._storage)

    def woke(self, cause: str, seconds: float) -> None:
        if cause in WAKE_CAUSES:  # the scheduler's own words; nothing else becomes a label
            self.wakes.labels(cause).inc()
        self.wake_seconds.observe(max(0.0, seconds))

    def status(self, slug: str, status: FacilityStatus) -> None:
        """A facility's status answer (its fields were validated by facility_http)."""
        with self._lock:
            self._outboxes[slug] = max(0, status.outbox)
            self.mail_queue.set(sum(self._outboxes.values()))
            if status.storage is not None:
                self._storage[slug] = status.storage
        if status.deletions is not None:
            self.deletions.report(slug, status.deletions)

    def exposition(self) -> bytes:
        """The scrape's body: every series, with the node label in cluster mode."""
        node = self.node()
        if not node:
            return generate_latest(self.registry)
        return generate_latest(_Labelled(self.registry, {"node": node}))


class DeletionTally(Collector):
    """`medcell_deletion_lag_seconds`, `medcell_deletions_total{reason}` and
    `medcell_deletions_late_total{facility}` from the facilities' running totals.

    Each report is compared with the last one of the same facility (kept in `baselines`, so a
    supervisor's restart neither loses nor recounts anything): only the growth is counted, so no
    probe counts a deletion twice and none is lost between probes. A facility without a report
    yet is new here: all of its totals count. Totals counted elsewhere are not counted again: a
    facility restored here by the node API (moved from another node: `adopt_next`) and one whose
    totals went down (restored from a backup, or recreated) give the baseline with their next
    report, and nothing of it is counted. A facility adds only to the sums and to its own
    `facility` series; a growth beyond MAX_DELETIONS_PER_REPORT is not believed.
    """

    def __init__(self, baselines: Path | None):
        self.baselines = baselines
        self._lock = threading.Lock()
        self._last: dict[str, Deletions] = {}
        self.reasons = dict.fromkeys(REASONS, 0)
        self.buckets = [0] * (len(DELETION_LAG_BUCKETS) + 1)
        self.sum_ms = 0
        self.late: dict[str, int] = {}  # facility -> expired conversations deleted > 60 s late

    def report(self, slug: str, now: Deletions) -> None:
        with self._lock:
            before = self._last.get(slug) or self._load(slug)
            if before is ADOPT or (before is not None and _went_down(before, now)):
                if now != _zero():
                    event("deletions_baseline", slug=slug)
            elif before == now:
                return
            else:
                self._grown(slug, now, before or _zero())
            self._last[slug] = now
            self._save(slug, now)

    def adopt_next(self, slug: str) -> None:
        """The facility's data was just restored here from elsewhere (a move, a restore through
        the node API): its next report is the baseline (kept across a restart too)."""
        with self._lock:
            self._last.pop(slug, None)
            path = self._path(slug)
            if path is None:
                return
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_json_atomic(path, {"adopt": True}, mode=0o600)
            except OSError as e:
                event("metrics_baseline_unwritable", slug=slug, error=type(e).__name__)

    def _grown(self, slug: str, now: Deletions, before: Deletions) -> None:
        growth = [a - b for a, b in zip(_flat(now), _flat(before), strict=True)]
        if sum(growth[: len(REASONS)]) > MAX_DELETIONS_PER_REPORT or growth[-1] > sum(
            growth[len(REASONS) : -1]
        ) * (DEADLINE_HORIZON * 1000):
            event("deletions_refused", slug=slug, reason="implausible_growth")
        else:
            self._count(slug, now, before)

    def _count(self, slug: str, now: Deletions, before: Deletions) -> None:
        for (reason, n), (_, m) in zip(now.reasons, before.reasons, strict=True):
            self.reasons[reason] += n - m
        late = 0
        for i, (n, m) in enumerate(zip(now.lag_buckets, before.lag_buckets, strict=True)):
            self.buckets[i] += n - m
            if i >= len(DELETION_LAG_BUCKETS) or DELETION_LAG_BUCKETS[i] > PROMISE_SECONDS:
                late += n - m
        self.sum_ms += now.lag_sum_ms - before.lag_sum_ms
        if late:
            self.late[slug] = self.late.get(slug, 0) + late

    def _path(self, slug: str) -> Path | None:
        if self.baselines is None or not SLUG_RE.fullmatch(slug):
            return None
        return self.baselines / f"{slug}.json"

    def _load(self, slug: str) -> Deletions | object | None:
        path = self._path(slug)
        try:
            if path is None or path.stat().st_size > 4096:
                return None
            data = strictjson.loads(path.read_bytes())
            if data == {"adopt": True}:
                return ADOPT
            return parse_deletions(data)
        except (OSError, StrictJSONError, KeyError):
            return None  # none yet, or unreadable: everything the facility reports counts

    def _save(self, slug: str, now: Deletions) -> None:
        path = self._path(slug)
        if path is None:
            return
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = {
                "reasons": dict(now.reasons),
                "lag_buckets": list(now.lag_buckets),
                "lag_sum_ms": now.lag_sum_ms,
            }
            write_json_atomic(path, data, mode=0o600)
        except OSError as e:
            event("metrics_baseline_unwritable", slug=slug, error=type(e).__name__)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            buckets, reasons, late = list(self.buckets), dict(self.reasons), dict(self.late)
            sum_seconds = self.sum_ms / 1000
        cumulative, total = [], 0
        for bound, n in zip([*DELETION_LAG_BUCKETS, math.inf], buckets, strict=True):
            total += n
            cumulative.append((floatToGoString(bound), total))
        yield HistogramMetricFamily(
            "medcell_deletion_lag_seconds",
            "Seconds after expires_at at which each expired conversation was deleted",
            buckets=cumulative,
            sum_value=sum_seconds,
        )
        counter = CounterMetricFamily(
            "medcell_deletions", "Conversations deleted, by reason", labels=["reason"]
        )
        for reason in REASONS:
            counter.add_metric([reason], reasons[reason])
        yield counter
        per_facility = CounterMetricFamily(
            "medcell_deletions_late",
            "Expired conversations deleted more than 60 s after expires_at, by facility",
            labels=["facility"],
        )
        for slug in sorted(late):
            per_facility.add_metric([slug], late[slug])
        yield per_facility


ADOPT = object()  # a baseline that says: the facility's next report is the baseline


def _zero() -> Deletions:
    return Deletions(tuple((r, 0) for r in REASONS), (0,) * (len(DELETION_LAG_BUCKETS) + 1), 0)


def _flat(d: Deletions) -> list[int]:
    return [n for _, n in d.reasons] + list(d.lag_buckets) + [d.lag_sum_ms]


def _went_down(before: Deletions, now: Deletions) -> bool:
    return any(a < b for a, b in zip(_flat(now), _flat(before), strict=True))


def facility_states(entries: Iterable[object]) -> dict[str, int]:
    """The scheduler's entries counted by the state an operator sees."""
    counts = dict.fromkeys(FACILITY_STATES, 0)
    for entry in entries:
        st = entry.st  # type: ignore[attr-defined]
        if st.desired == Desired.STOPPED:
            counts["stopped"] += 1
        elif st.health == Health.UNHEALTHY:
            counts["unhealthy"] += 1
        elif st.asleep:
            counts["asleep"] += 1
        else:
            counts["running"] += 1
    return counts


class _FacilityStates(Collector):
    def __init__(self, read: Callable[[], Mapping[str, int]]):
        self.read = read

    def collect(self) -> Iterable[Metric]:
        gauge = Metric("medcell_facilities", "Facilities on this host, by state", "gauge")
        counts = {**dict.fromkeys(FACILITY_STATES, 0), **self.read()}
        for state in FACILITY_STATES:
            gauge.add_sample("medcell_facilities", {"state": state}, counts[state])
        yield gauge


class GatewayRequests(Collector):
    """`medcell_gateway_requests_total{category,status}` and
    `medcell_gateway_request_duration_seconds`, from the totals the same host's gateway writes
    (gateway/requestcount.py, counted from nginx's access log). Read strictly at each scrape:
    a file too large or not of its shape gives no series at all."""

    LIMIT = 64 * 1024

    def __init__(self, path: Path | None):
        self.path = path

    def read(self) -> tuple[dict[tuple[str, str], int], list[int], float] | None:
        if self.path is None:
            return None
        try:
            with self.path.open("rb") as f:
                raw = f.read(self.LIMIT + 1)
            if len(raw) > self.LIMIT:
                return None
            data = strictjson.loads(raw)
            if not isinstance(data, dict):
                return None
            counts = {}
            for key, n in data["counts"].items():
                category, _, status = key.partition(" ")
                if category not in GATEWAY_REQUEST_CATEGORIES or not (
                    status.isdigit() and 100 <= int(status) <= 599
                ):
                    return None
                counts[(category, status)] = strictjson.integer(n, "counts")
            buckets = data["duration_buckets"]
            if not isinstance(buckets, list) or len(buckets) != len(GATEWAY_DURATION_BUCKETS) + 1:
                return None
            buckets = [strictjson.integer(n, "duration_buckets") for n in buckets]
            total = strictjson.number(data["duration_sum"], "duration_sum", low=0.0)
            return counts, buckets, total
        except (OSError, StrictJSONError, KeyError, AttributeError, TypeError):
            return None

    def collect(self) -> Iterable[Metric]:
        read = self.read()
        if read is None:
            return
        counts, buckets, total = read
        requests = CounterMetricFamily(
            "medcell_gateway_requests",
            "Requests the gateway answered, by category and status",
            labels=["category", "status"],
        )
        for (category, status), n in sorted(counts.items()):
            requests.add_metric([category, status], n)
        yield requests
        yield HistogramMetricFamily(
            "medcell_gateway_request_duration_seconds",
            "Seconds the gateway took to answer a request (nginx's request time)",
            buckets=_cumulative(GATEWAY_DURATION_BUCKETS, buckets),
            sum_value=total,
        )


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, int]]:
    out, total = [], 0
    for bound, n in zip([*bounds, math.inf], counts, strict=True):
        total += n
        out.append((floatToGoString(bound), total))
    return out


class _BackupAges(Collector):
    def __init__(self, read: Callable[[], Mapping[str, float]]):
        self.read = read

    def collect(self) -> Iterable[Metric]:
        ages = GaugeMetricFamily(
            "medcell_backup_age_seconds",
            "Seconds since the facility's last scheduled backup",
            labels=["facility"],
        )
        for slug, age in sorted(self.read().items()):
            ages.add_metric([slug], age)
        yield ages


class _Storage(Collector):
    def __init__(self, read: Callable[[], Mapping[str, tuple[int, int]]]):
        self.read = read

    def collect(self) -> Iterable[Metric]:
        used = GaugeMetricFamily(
            "medcell_storage_used_bytes",
            "Bytes of the facility's database in use, as its last status said",
            labels=["facility"],
        )
        quota = GaugeMetricFamily(
            "medcell_storage_quota_bytes", "The facility's storage quota", labels=["facility"]
        )
        for slug, (in_use, limit) in sorted(self.read().items()):
            used.add_metric([slug], in_use)
            quota.add_metric([slug], limit)
        yield used
        yield quota


class _Labelled(Collector):
    """Another registry's series, each sample with `labels` added (a cluster node's name)."""

    def __init__(self, inner: CollectorRegistry, labels: Mapping[str, str]):
        self.inner, self.labels = inner, dict(labels)

    def collect(self) -> Iterable[Metric]:
        for metric in self.inner.collect():
            out = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            for sample in metric.samples:
                out.add_sample(
                    sample.name,
                    {**sample.labels, **self.labels},
                    sample.value,
                    sample.timestamp,
                    sample.exemplar,
                )
            yield out


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.0"  # one request per connection: a scraper holds no thread

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._error(404, "not_found", "only /metrics is served here")
            return
        body = self.server.metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._error(405, "method_not_allowed", "use GET")

    do_POST = do_PUT = do_DELETE = do_HEAD

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not worth a log line


class MetricsServer(ThreadingHTTPServer):
    """At most MAX_CONNECTIONS scrapes at once, each with REQUEST_TIMEOUT to ask."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], metrics: Metrics):
        self.metrics = metrics
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: closed, never queued
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            socketserver.ThreadingMixIn.process_request_thread(self, request, client_address)
        finally:
            self.slots.release()


def start(bind: tuple[str, int], metrics: Metrics) -> MetricsServer:
    """Listen on `bind` in a thread of its own; the caller shuts it down."""
    server = MetricsServer(bind, metrics)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    event("metrics_listening", address=bind[0], port=server.server_address[1])
    return server

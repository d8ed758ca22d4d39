"""The supervisor's loop: probe awake facilities rarely, sleep idle ones, wake them at deadlines.

All of its state is rebuilt from the state files and one Docker list call (reconcile), so a
restarted supervisor picks up where the last one stopped. Per tick it only pops due events off a
heap: 1,000 asleep facilities cost nothing until one of their deadlines comes near.

In cluster mode (`node`, supervisor/cluster.py) the facilities are the services pinned to this
node, listed by a discovery job off this thread; whatever would scale one waits while no manager
answers (held), and is taken up again as soon as one does.

Facilities are hostile: none may hold this thread. Status probes run on a pool of their own (one
per facility at a time, each exchange with a deadline), a tick handles a bounded number of due
events, and an event re-armed while it is handled waits at least MIN_REARM: whatever one
facility answers, the others' deadlines, backup-key expiry and the mail relay get their turn.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medcell_common.interfaces import Desired, Health, Label
from provisioner.host import facility_http, locks, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import (
    Busy,
    DockerError,
    FacilityNotFound,
    FacilityStopped,
    FacilityUnreachable,
)
from provisioner.host.validation import SLUG_RE
from provisioner.supervisor import cluster
from provisioner.supervisor.jobs import Job, JobPool, QueueFull
from provisioner.supervisor.logs import event

PROBE_INTERVAL = 30.0  # health of an awake facility
RETRY_PROBE = 5.0  # after a failed probe, or while work keeps a due facility awake
DEADLINE_PROBE = 2.0  # a facility woken for its deadline, until its work is done
DEADLINE_LEAD = 10.0  # wake this long before the deadline
# No facility reports a deadline further away (facility_socket clamps to it); a wake_at beyond it
# in a state file is not trusted either.
DEADLINE_HORIZON = facility_http.DEADLINE_HORIZON
DEADLINE_MARGIN = 60.0  # back to sleep only if the next deadline is further away than this
RECONCILE_INTERVAL = 30.0
RECONCILE_RETRY = 5.0  # Docker did not answer (an engine restart under way)
FAILED_PROBES = 3
BACKOFF_MIN, BACKOFF_MAX = 5.0, 300.0
OWN_WAKES = 8  # the scheduler's own wakes queued at once, so requests always find room
PROBE_TIMEOUT = 2.0  # a whole status exchange, connect to last byte
PROBE_WORKERS = 8  # probes at once: a few stalling facilities leave the rest on time
MIN_REARM = 1.0  # an event handled in a tick comes due again no sooner than this
MAX_DUE_PER_TICK = 256  # due events handled per tick; the rest wait for the next one
NO_MANAGER_RETRY = 10.0  # cluster mode: ask for a manager again this often while none answers
HELD_RETRY = 30.0  # a facility whose sleep, wake or deadline waits for a manager: looked at again


@dataclass
class Entry:
    """What the scheduler knows of one facility (all of it re-read at each reconcile)."""

    slug: str
    st: state_file.FacilityState = field(default_factory=state_file.FacilityState)
    # awake | deadline (woken for its deadline) | asleep | stopped | down (should run, does not)
    mode: str = ""
    due: float | None = None
    failures: int = 0
    backoff: float = 0.0
    retry_at: float = 0.0
    plain: bool = False  # cluster mode: a single-host container kept on this node, not a service
    held: str = ""  # cluster mode: what waits for a manager (sleep, deadline, recover), logged once


class Scheduler:
    """Single-threaded; the probe, wake and sleep pools report back through `inbox`."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        wakes: JobPool,
        sleeps: JobPool,
        clock: Callable[[], float] = time.time,
        probe_timeout: float = PROBE_TIMEOUT,
        node: cluster.NodeEngine | None = None,
    ):
        self.config, self.backend = config, backend
        self.node = node
        # Cluster mode: whether this node removed what is no longer its own since a manager last
        # answered (nothing is marked answering before), and what the last discovery said.
        self.cleaned = False
        self.no_manager = ""
        self.discoveries = JobPool(
            lambda slug, arg: node.discover() if node is not None else None,
            max_running=1,
            max_waiting=1,
            on_done=lambda job: self.inbox.put(("discover", job)),
            name="discover",
        )
        self.wakes, self.sleeps = wakes, sleeps
        self.clock = clock
        self.probe_timeout = probe_timeout
        self.probes = JobPool(
            self._read_status,
            max_running=PROBE_WORKERS,
            max_waiting=100_000,  # each facility once at most
            on_done=lambda job: self.inbox.put(("probe", job)),
            name="probe",
        )
        self._floor: float | None = None  # while due events are handled: the earliest re-arm
        self.entries: dict[str, Entry] = {}
        self.inbox: queue.SimpleQueue[tuple[str, Job]] = queue.SimpleQueue()
        self.next_reconcile = 0.0
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        # Told of every status a probe reads (the mail relay drains outboxes from it).
        self.on_status: Callable[[str, facility_http.FacilityStatus], None] = lambda s, st: None

    def known(self, slug: str) -> bool:
        """Whether a facility of that slug exists, without asking Docker."""
        return slug in self.entries or state_file.state_path(self.config, slug).exists()

    def can_scale(self, slug: str) -> bool:
        """Whether a wake or sleep of the facility can be done now: always on a single host; in
        a cluster once this node removed what is not its own, and while a manager answers (a
        single-host container kept on the node needs none)."""
        if self.node is None:
            return True
        entry = self.entries.get(slug)
        if entry is not None and entry.plain:
            return True
        return self.cleaned and self.node.reachable

    def tick(self) -> None:
        now = self.clock()
        while True:
            try:
                kind, job = self.inbox.get_nowait()
            except queue.Empty:
                break
            self._finished(kind, job, now)
        if now >= self.next_reconcile:
            self.reconcile(now)
        handled = 0
        self._floor = now + MIN_REARM
        try:
            while self._heap and self._heap[0][0] <= now and handled < MAX_DUE_PER_TICK:
                at, _, slug = heapq.heappop(self._heap)
                entry = self.entries.get(slug)
                if entry is None or entry.due != at:
                    continue  # superseded by a later schedule
                entry.due = None
                handled += 1
                self._due(entry, now)
        finally:
            self._floor = None

    def _busy(self, slug: str) -> bool:
        """A job of the facility's is queued or running; its result will place it."""
        return self.wakes.busy(slug) or self.sleeps.busy(slug) or self.probes.busy(slug)

    # reconcile

    def reconcile(self, now: float) -> None:
        """One list call and the state files: place every facility in its mode."""
        self.next_reconcile = now + RECONCILE_INTERVAL
        if self.node is not None:
            # The services are listed off this thread; their list comes back through the inbox.
            if not self.discoveries.busy("node"):
                self.discoveries.submit("node")
            return
        infos = self._containers(now)
        if infos is None:
            return
        seen = {}
        for info in infos:
            slug = info.labels.get(Label.FACILITY, "")
            if SLUG_RE.fullmatch(slug):
                seen[slug] = info.status
        self._place(seen, now)

    def _containers(self, now: float) -> list | None:
        labels = {
            Label.INSTANCE: self.config.prefix,
            Label.ROLE: "facility",
            Label.FACILITY: None,
        }
        try:
            return self.backend.containers(labels)
        except DockerError:
            event("reconcile_failed", logging.WARNING)
            self.next_reconcile = now + RECONCILE_RETRY
            return None

    def _discovered(self, job: Job, now: float) -> None:
        """Cluster mode: place this node's facilities from what the discovery found."""
        found = job.result
        if not isinstance(found, cluster.Discovery):
            event("discovery_failed", logging.WARNING, error=type(job.error).__name__)
            found = cluster.Discovery("", reachable=False, reason="unreachable")
        assert self.node is not None
        infos = self._containers(now)
        if infos is None:
            return
        seen: dict[str, str] = {}
        plain = set()
        for info in infos:
            slug = info.labels.get(Label.FACILITY, "")
            if not SLUG_RE.fullmatch(slug):
                continue
            if info.name == self.config.facility(slug).container:
                plain.add(slug)
            if seen.get(slug) != "running":  # a running task wins over an ended one beside it
                seen[slug] = info.status
        if found.reachable and found.pinned is not None:
            moved = {
                slug
                for slug, entry in self.entries.items()
                if not entry.plain and slug not in found.pinned
            }
            if not self.cleaned or self.no_manager or moved:
                # Before anything here is marked answering (on start), when a manager answers
                # again after a cut, and when one of its own went elsewhere: what is no longer
                # this node's goes.
                cluster.remove_unassigned(self.config, found, plain, moved, self.clock)
                self.cleaned = True
            # A facility a manager just made here: this node's gateway learns of it.
            cluster.publish_missing_routes(self.config, found.pinned)
            slugs = set(found.pinned) | plain
            if self.no_manager:
                event("manager_back")
                self.no_manager = ""
            self.node.reachable = True
            self._release_held(now)
        else:
            self.node.reachable = False
            self.next_reconcile = now + NO_MANAGER_RETRY
            if self.no_manager != found.reason:
                event("no_manager", logging.WARNING, reason=found.reason)
                self.no_manager = found.reason
            # Who is ours cannot be asked: keep what was known, else what this node holds.
            slugs = set(self.entries) or (cluster.local_slugs(self.config) | set(seen))
        statuses = {slug: seen.get(slug, "absent") for slug in slugs}
        self._place(statuses, now, plain)

    def _release_held(self, now: float) -> None:
        """A manager answers again: whatever waited for one is looked at now."""
        for entry in self.entries.values():
            if entry.held:
                entry.held = ""
                if not self._busy(entry.slug):
                    self._schedule(entry, now)

    def _hold(self, entry: Entry, now: float, what: str) -> None:
        """Cluster mode without a manager: leave the facility as it is, say so once, and look
        again later (no job, so nothing spins)."""
        if entry.held != what:
            entry.held = what
            level = logging.WARNING if what == "deadline" else logging.INFO
            name = "deadline_late" if what == "deadline" else f"{what}_held"
            event(name, level, slug=entry.slug, reason=self.no_manager or "cleanup_pending")
        self._schedule(entry, now + HELD_RETRY)

    def _place(self, seen: dict[str, str], now: float, plain: set[str] = frozenset()) -> None:
        states = state_file.load_all(self.config)
        for slug in [s for s in self.entries if s not in seen]:
            del self.entries[slug]
        for slug, status in seen.items():
            entry = self.entries.setdefault(slug, Entry(slug))
            entry.st = states.get(slug) or state_file.FacilityState()
            entry.plain = slug in plain
            if self._busy(slug):
                continue  # the job's result will place it
            mode = self._mode(entry, status)
            if mode != entry.mode or entry.due is None:
                entry.mode = mode
                self._arm(entry, now)

    def _mode(self, entry: Entry, status: str) -> str:
        if entry.st.desired == Desired.STOPPED:
            return "stopped"
        if status in ("running", "restarting"):
            # Running while marked asleep is a sleep cut short: probing lets it sleep again.
            return "deadline" if entry.mode == "deadline" else "awake"
        return "asleep" if entry.st.asleep else "down"

    def _arm(self, entry: Entry, now: float) -> None:
        if entry.mode in ("awake", "deadline"):
            self._schedule(entry, now)
        elif entry.mode == "asleep":
            self._arm_asleep(entry, now)
        elif entry.mode == "down":
            self._schedule(entry, max(now, entry.retry_at))
        else:
            entry.due = None

    def _arm_asleep(self, entry: Entry, now: float) -> None:
        if entry.st.wake_at is None:
            entry.due = None  # nothing to do by itself: only a request wakes it
        else:
            at = min(max(now, entry.st.wake_at - DEADLINE_LEAD), now + DEADLINE_HORIZON)
            self._schedule(entry, at)

    def _schedule(self, entry: Entry, at: float) -> None:
        if not math.isfinite(at):
            at = self.clock() + RETRY_PROBE  # never a time that is neither due nor later
        if self._floor is not None:
            at = max(at, self._floor)  # handled this tick: not again in the same one
        entry.due = at
        heapq.heappush(self._heap, (at, next(self._seq), entry.slug))

    # due events

    def _due(self, entry: Entry, now: float) -> None:
        if self._busy(entry.slug):
            return  # the job's result reschedules it
        if entry.mode in ("awake", "deadline"):
            self._probe(entry, now)
        elif entry.mode == "asleep":
            wake_at = entry.st.wake_at
            if wake_at is not None and wake_at - DEADLINE_LEAD <= now:
                self._wake(entry, now, "deadline")
            else:
                self._arm_asleep(entry, now)
        elif entry.mode == "down":
            self._wake(entry, now, "recover")

    def _wake(self, entry: Entry, now: float, reason: str) -> None:
        if not self.can_scale(entry.slug):
            self._hold(entry, now, "deadline" if reason == "deadline" else reason)
            return
        if self.wakes.pending() >= OWN_WAKES:
            self._schedule(entry, now + 1)
            return
        try:
            self.wakes.submit(entry.slug, reason)
        except QueueFull:
            self._schedule(entry, now + 1)

    def _put_to_sleep(self, entry: Entry, now: float, require_idle: float) -> None:
        if not self.can_scale(entry.slug):
            # It stays awake and deletes its own expired data; the next probe decides again.
            self._hold(entry, now, "sleep")
            return
        try:
            self.sleeps.submit(entry.slug, require_idle)
        except QueueFull:
            self._schedule(entry, now + RETRY_PROBE)

    def _probe(self, entry: Entry, now: float) -> None:
        try:
            self.probes.submit(entry.slug)
        except QueueFull:
            self._schedule(entry, now + RETRY_PROBE)

    def _read_status(self, slug: str, arg: object) -> facility_http.FacilityStatus:
        """On a probe thread: the status, read strictly within the probe's deadline."""
        return facility_http.status(self.config, slug, self.probe_timeout, now=self.clock())

    def _probed(self, entry: Entry, now: float, job: Job) -> None:
        if entry.mode not in ("awake", "deadline"):
            self._arm(entry, now)  # placed elsewhere meanwhile
            return
        status = job.result
        if job.error is not None or not isinstance(status, facility_http.FacilityStatus):
            if not isinstance(job.error, FacilityUnreachable):
                event(
                    "probe_error", logging.WARNING, slug=entry.slug, error=type(job.error).__name__
                )
            entry.failures += 1
            if entry.failures >= FAILED_PROBES:
                self._set_health(entry, Health.UNHEALTHY, "not answering on its socket")
            self._schedule(entry, now + RETRY_PROBE)
            return
        entry.failures = 0
        self.on_status(entry.slug, status)
        if entry.st.health != Health.OK:
            self._set_health(entry, Health.OK, None)
        # Mail waiting is relayed first (on_status above); it keeps the facility awake till then.
        quiet = not status.inflight and not status.busy and not status.outbox
        if entry.mode == "deadline":
            if status.requests:
                entry.mode = "awake"  # someone uses it: the idle timeout decides from now on
            else:
                nxt = status.next_deadline
                if quiet and (nxt is None or nxt - now > DEADLINE_MARGIN):
                    self._put_to_sleep(entry, now, 0.0)
                elif quiet:
                    self._schedule(entry, self._after_deadline(now, nxt))
                else:
                    self._schedule(entry, now + DEADLINE_PROBE)
                return
        timeout = entry.st.idle_timeout(self.config)
        nxt = status.next_deadline
        if timeout <= 0:
            self._schedule(entry, now + PROBE_INTERVAL)
        elif status.idle_seconds < timeout:
            # The earliest its idle time could be up, or the next health probe.
            self._schedule(entry, now + min(PROBE_INTERVAL, timeout - status.idle_seconds))
        elif not quiet:
            self._schedule(entry, now + RETRY_PROBE)
        elif nxt is not None and nxt - now <= DEADLINE_MARGIN:
            # Sleeping now would mean waking again in a moment: let it do that work first.
            self._schedule(entry, self._after_deadline(now, nxt))
        else:
            self._put_to_sleep(entry, now, float(timeout))

    @staticmethod
    def _after_deadline(now: float, deadline: float | None) -> float:
        """When to look again at a facility whose next deadline is close (or overdue)."""
        if deadline is None or deadline <= now:
            return now + RETRY_PROBE
        return min(now + PROBE_INTERVAL, max(now + DEADLINE_PROBE, deadline + 2))

    def _set_health(self, entry: Entry, health: str, error: str | None) -> None:
        try:
            with locks.facility_lock(self.config, entry.slug):
                st = state_file.load(self.config, entry.slug)
                if health == Health.UNHEALTHY and (st.asleep or st.desired == Desired.STOPPED):
                    # Not answering because the CLI put it to sleep or stopped it: not a fault.
                    entry.st = st
                    self.next_reconcile = self.clock()
                    return
                if st.health != health:
                    st.health, st.error = health, error
                    state_file.save(self.config, entry.slug, st)
                    event(health, logging.WARNING if error else logging.INFO, slug=entry.slug)
                entry.st = st
        except Busy:
            pass  # someone is changing it right now; the next probe tries again

    # results of the pools

    def _finished(self, kind: str, job: Job, now: float) -> None:
        if kind == "discover":
            self._discovered(job, now)
            return
        entry = self.entries.get(job.slug)
        if entry is None:
            return  # deleted meanwhile, or not seen yet: the next reconcile places it
        if kind == "probe":
            self._probed(entry, now, job)
            return
        if cluster.no_manager(job.error):
            # The manager went away between the discovery and the job: held until it is back.
            if self.node is not None:
                self.node.reachable = False
            self.next_reconcile = now
            self._hold(entry, now, "deadline" if job.arg == "deadline" else kind)
            return
        entry.st = state_file.load(self.config, job.slug)
        error = job.error
        if isinstance(error, FacilityNotFound | FacilityStopped):
            self.next_reconcile = now
            entry.due = None
        elif kind == "wake":
            self._woke(entry, now, job, error)
        elif error is not None:
            # Busy: the CLI holds the lock; anything else was logged by the pool's caller.
            self._schedule(entry, now + (RETRY_PROBE if isinstance(error, Busy) else 30.0))
        elif job.result:
            entry.mode = "asleep"
            self._arm_asleep(entry, now)
        else:
            self._schedule(entry, now + 2 * RETRY_PROBE)

    def _woke(self, entry: Entry, now: float, job: Job, error: BaseException | None) -> None:
        if error is None:
            entry.mode = "deadline" if job.arg == "deadline" else "awake"
            entry.failures, entry.backoff = 0, 0.0
            first = DEADLINE_PROBE if entry.mode == "deadline" else PROBE_INTERVAL
            timeout = entry.st.idle_timeout(self.config)
            if entry.mode == "awake" and timeout:
                first = min(first, timeout)  # the earliest its idle time could be up
            self._schedule(entry, now + first)
            return
        if isinstance(error, Busy):
            # A command holds the facility: look again soon, without a back-off that could carry
            # a deadline far past the moment the command lets go.
            self._schedule(entry, now + RETRY_PROBE)
            return
        entry.backoff = min(BACKOFF_MAX, max(BACKOFF_MIN, entry.backoff * 2))
        entry.retry_at = now + entry.backoff
        if job.arg == "deadline" and entry.st.wake_at is not None:
            entry.st.wake_at = min(entry.st.wake_at, now)  # still overdue: retry after the back-off
        self._schedule(entry, entry.retry_at)

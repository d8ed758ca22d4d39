"""The supervisor: the scheduler loop in one thread, the wake API in others, both over two pools."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from medcell_common.interfaces import GATEWAY_REQUESTS_FILE
from provisioner.host import lifecycle, smtp, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import (
    Busy,
    FacilityNotFound,
    FacilityStopped,
    NoRoom,
    ProvisionerError,
)
from provisioner.host.facility_http import FacilityStatus
from provisioner.supervisor import cluster, metrics, node_api
from provisioner.supervisor.backup_expiry import BackupExpiry
from provisioner.supervisor.capacity import GRACE, AwakeFacilities
from provisioner.supervisor.jobs import Job, JobPool
from provisioner.supervisor.logs import event
from provisioner.supervisor.mail import MailRelay
from provisioner.supervisor.metrics import Metrics, MetricsServer
from provisioner.supervisor.openings import OpeningWakes
from provisioner.supervisor.scheduled_backups import ScheduledBackups
from provisioner.supervisor.scheduler import Scheduler
from provisioner.supervisor.tombstone_push import TombstonePush
from provisioner.supervisor.wake_api import MAX_CONNECTIONS, WakeServer, WakeService

log = logging.getLogger("medcell.supervisor")

TICK = 1.0
WAKES_PER_CPU = 2  # a wake is mostly CPU (runc, the interpreter's start): more only queue on it
MAX_SLEEPING = 2  # sleeps are not urgent; they must not take the host from wakes
EVICTION_TRIES = 8  # awake facilities asked to make room for one wake before it is refused
WAKE_TIMEOUT = 30.0  # a woken facility must answer /healthz within this
LOCK_WAIT = 45.0  # a wake waits this long for a sleep (or a CLI command) of the same facility


class Supervisor:
    """Keeps every facility at its desired state; `run()` until `stop()` (SIGTERM).

    `node`: cluster mode (supervisor/cluster.py), the facilities pinned to this node, scaled as
    services; None: the containers of a single host.
    """

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        *,
        clock: Callable[[], float] = time.time,
        tick: float = TICK,
        max_waking: int | None = None,
        max_waiting: int | None = None,
        node: cluster.NodeEngine | None = None,
    ):
        self.config, self.backend, self.clock, self.tick_seconds = config, backend, clock, tick
        self.node = node
        # What lifecycle is handed: the node's engine in a cluster, the bare backend on one host.
        self.engine = node if node is not None else backend
        if max_waking is None and config.wakes_at_once:
            max_waking = config.wakes_at_once
        max_waking, max_waiting = wake_queue(config.max_awake, max_waking, max_waiting)
        self.awake = AwakeFacilities(config.max_awake, clock)
        self.wakes = JobPool(
            self._wake,
            max_running=max_waking,
            max_waiting=max_waiting,
            on_done=lambda job: self.scheduler.inbox.put(("wake", job)),
            name="wake",
        )
        self.sleeps = JobPool(
            self._sleep,
            max_running=MAX_SLEEPING,
            max_waiting=100_000,  # the scheduler submits each facility once
            on_done=lambda job: self.scheduler.inbox.put(("sleep", job)),
            name="sleep",
        )
        self.scheduler = Scheduler(config, backend, self.wakes, self.sleeps, clock, node=node)
        # When the oldest request waiting for each facility's wake was first held (monotonic).
        self._held_since: dict[str, float] = {}
        self._held_lock = threading.Lock()
        self.service = WakeService(
            self.wakes, self.scheduler.known, wait=WAKE_TIMEOUT + LOCK_WAIT, held=self._held
        )
        self.openings = OpeningWakes(config, lambda: self.scheduler.entries, self.wakes)
        # A cluster node's tombstones also go to every manager (they outlive this node).
        push = None
        if node is not None:
            managers = node.swarm.swarm.manager_addresses
            push = TombstonePush(config, managers, node_api.node_tls_dir(config), clock)
        self.backup_expiry = BackupExpiry(config, clock, push)
        # Cluster mode: MEDCELL_BACKUP_EVERY's backups of this node's facilities, kept elsewhere.
        self.scheduled_backups = ScheduledBackups(
            config,
            backend,
            lambda: node.swarm.swarm if node is not None else None,
            clock,
            remote=lambda: node.remote.swarm if node is not None else None,
        )
        # Only an installation with an SMTP server relays mail (`medcell up` wrote its settings).
        self.mail = MailRelay(config) if smtp.configured(config.home) else None
        self.metrics = Metrics(
            lambda: node.node if node is not None else None,
            baselines=config.home / "metrics",
            gateway_requests=config.gateway_run_dir / GATEWAY_REQUESTS_FILE,
        )
        if config.backup_every:
            self.metrics.watch_backups(self.scheduled_backups.ages)
        if self.mail is not None:
            self.mail.on_failure = self.metrics.mail_failures.inc
        self.scheduler.on_status = self._on_status
        self._stop = threading.Event()
        self.server: WakeServer | None = None
        self.metrics_server: MetricsServer | None = None

    def _on_status(self, slug: str, status: FacilityStatus) -> None:
        self.awake.seen(slug, status.idle_seconds)
        self.metrics.status(slug, status)
        if self.mail is not None:
            self.mail.on_status(slug, status)

    def _held(self, slug: str, since: float) -> None:
        with self._held_lock:
            self._held_since[slug] = min(since, self._held_since.get(slug, since))

    def _wake(self, slug: str, reason: object) -> None:
        try:
            self._wake_held(slug, reason)
        finally:
            # A request that joined this wake is answered with it; one held later asks anew.
            with self._held_lock:
                self._held_since.pop(slug, None)

    def _wake_held(self, slug: str, reason: object) -> None:
        timeout = self.config.health_timeout if reason == "recover" else WAKE_TIMEOUT
        if not self.scheduler.can_scale(slug) and not self._routable(slug):
            event("wake_refused", slug=slug, reason=self.scheduler.no_manager or "cleanup_pending")
            raise cluster.NoManager(f"no manager answers; facility {slug} cannot be woken")
        if not self.awake.reserve(slug):
            if reason == "opening":
                # Speculative: it must not put a facility in use to sleep; a request wakes it.
                raise NoRoom("the host is at its awake cap; no wake before opening")
            self._make_room(slug)
        started = time.monotonic()
        try:
            woke = lifecycle.wake(
                self.config,
                self.engine,
                slug,
                reason=str(reason),
                timeout=min(timeout, self.config.health_timeout),
                # Only a waiting request waits for the lock; the scheduler's own wakes (deadline,
                # recover, opening) skip a facility a command holds and come back to it, so that
                # no held lock keeps a wake thread from another facility's deadline.
                lock_wait=LOCK_WAIT if reason == "request" else 0.0,
                clock=self.clock,
            )
        except (FacilityNotFound, FacilityStopped, Busy):
            # Busy: a command holds it; the scheduler comes back to it (no warning every time).
            self.awake.release(slug)
            raise
        except Exception as e:
            self.awake.release(slug)
            event(
                "wake_error", logging.WARNING, slug=slug, reason=str(reason), error=type(e).__name__
            )
            raise
        self.awake.woke(slug)
        if woke:  # a wake asked for an awake facility (a request held meanwhile) is none
            if reason == "request":
                # From the first request held for it: the wait its patient had (queue, room
                # made, a gateway that held it while this supervisor restarted).
                with self._held_lock:
                    started = min(started, self._held_since.get(slug, started))
            self.metrics.woke(str(reason), time.monotonic() - started)

    def _make_room(self, slug: str) -> None:
        """Put least recently used awake facilities to sleep until `slug` has a slot; NoRoom."""
        tries = 0
        for victim in self.awake.victims(self._not_to_be_evicted):
            if tries >= EVICTION_TRIES:
                break
            if not self.awake.claim(victim):
                continue
            tries += 1
            try:
                # A fresh status decides: nothing in flight, no request within the grace period.
                slept = lifecycle.put_to_sleep(
                    self.config, self.engine, victim, require_idle=GRACE, clock=self.clock
                )
            except ProvisionerError as e:  # Busy (a command holds it), Docker trouble
                event("evict_skipped", slug=victim, error=type(e).__name__)
                slept = False
            if not slept:
                self.awake.unclaim(victim, used_now=True)
                continue
            self.awake.slept(victim)
            event("evicted", slug=victim, for_slug=slug)
            # The scheduler learns it as from its own sleeps: the facility is asleep now.
            done = Job(victim, GRACE)
            done.result = True
            self.scheduler.inbox.put(("sleep", done))
            if self.awake.reserve(slug):
                return
        event("wake_refused", logging.WARNING, slug=slug, reason="no_room")
        raise NoRoom(f"{self.awake.cap} facilities are awake and none can sleep yet")

    def _routable(self, slug: str) -> bool:
        """Cluster mode without a manager: a facility whose task runs here may still be routed
        straight to (nothing is scaled), once this node removed what is no longer its own."""
        return self.node is not None and self.scheduler.cleaned and self.node.runs_here(slug)

    def _not_to_be_evicted(self, slug: str) -> bool:
        if self.wakes.busy(slug) or self.sleeps.busy(slug):
            return True
        if not self.scheduler.can_scale(slug):
            return True  # no manager to scale it down
        # `--idle never`: the operator wants it awake whatever else happens.
        return state_file.load(self.config, slug).idle == 0

    def _sleep(self, slug: str, require_idle: object) -> bool:
        try:
            slept = lifecycle.put_to_sleep(
                self.config,
                self.engine,
                slug,
                require_idle=float(require_idle),  # type: ignore[arg-type]
                clock=self.clock,
            )
        except Exception as e:
            event("sleep_error", logging.WARNING, slug=slug, error=type(e).__name__)
            raise
        if slept:
            self.awake.slept(slug)
        return slept

    def start_server(self) -> WakeServer:
        """Listen on the wake socket (in its own thread)."""
        # Every request a full queue holds, and some to answer busy at once.
        self.server = WakeServer(
            self.config.supervisor_socket,
            self.service,
            max_connections=max(MAX_CONNECTIONS, 2 * self.config.max_awake),
        )
        threading.Thread(target=self.server.serve_forever, name="wake-api", daemon=True).start()
        return self.server

    def start_metrics(self) -> MetricsServer:
        """Serve GET /metrics on MEDCELL_METRICS_BIND (in its own thread)."""
        self.metrics_server = metrics.start(self.config.metrics_bind, self.metrics)
        return self.metrics_server

    def run(self) -> None:
        """The scheduler loop, until stop(); reconciles at once on start."""
        event(
            "started",
            tick=self.tick_seconds,
            wakes_at_once=self.wakes.max_running,
            wakes_queued=self.wakes.max_waiting,
        )
        while not self._stop.is_set():
            try:
                self.scheduler.tick()
                self.openings.tick(self.clock())
                self.backup_expiry.tick()
                self.scheduled_backups.tick()
                self.metrics.set_states(self.scheduler.entries)
            except Exception:
                # One bad tick (a full disk, a vanished file) must not end the supervisor.
                log.exception("tick_failed", extra={"fields": {"event": "tick_failed"}})
            self._stop.wait(self.tick_seconds)
        event("stopped")

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Stop listening, remove the socket, drop queued jobs; running ones end by themselves."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        self.wakes.stop()
        self.sleeps.stop()
        self.scheduler.probes.stop()
        self.scheduler.discoveries.stop()
        if self.mail is not None:
            self.mail.stop()


def wake_queue(
    max_awake: int, running: int | None = None, waiting: int | None = None
) -> tuple[int, int]:
    """Wakes at once and wakes queued: from the CPUs, and as many as the host may hold awake.

    A queue as long as the awake cap answers every request as long as the host has room; more
    at once than the CPUs can start only slows each down.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if running is None:
        running = max(2, min(WAKES_PER_CPU * (cpus or 1), max_awake))
    if waiting is None:
        waiting = max(max_awake, 16)
    return running, waiting

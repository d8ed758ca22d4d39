"""The supervisor: the scheduler loop in one thread, the wake API in others, both over two pools."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from provisioner import lifecycle, smtp
from provisioner.config import Config
from provisioner.docker_backend import DockerBackend
from provisioner.errors import FacilityNotFound, FacilityStopped
from provisioner.supervisor.backup_expiry import BackupExpiry
from provisioner.supervisor.jobs import JobPool
from provisioner.supervisor.logs import event
from provisioner.supervisor.mail import MailRelay
from provisioner.supervisor.scheduler import Scheduler
from provisioner.supervisor.wake_api import WakeServer, WakeService

log = logging.getLogger("medcell.supervisor")

TICK = 1.0
MAX_WAKING, MAX_WAITING = 4, 64  # a wake storm is queued and bounded, never a fork bomb
MAX_SLEEPING = 2  # sleeps are not urgent; they must not take the host from wakes
WAKE_TIMEOUT = 30.0  # a woken facility must answer /healthz within this
LOCK_WAIT = 45.0  # a wake waits this long for a sleep (or a CLI command) of the same facility


class Supervisor:
    """Keeps every facility at its desired state; `run()` until `stop()` (SIGTERM)."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        *,
        clock: Callable[[], float] = time.time,
        tick: float = TICK,
        max_waking: int = MAX_WAKING,
        max_waiting: int = MAX_WAITING,
    ):
        self.config, self.backend, self.clock, self.tick_seconds = config, backend, clock, tick
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
        self.scheduler = Scheduler(config, backend, self.wakes, self.sleeps, clock)
        self.service = WakeService(self.wakes, self.scheduler.known, wait=WAKE_TIMEOUT + LOCK_WAIT)
        self.backup_expiry = BackupExpiry(config, clock)
        # Only an installation with an SMTP server relays mail (`medcell up` wrote its settings).
        self.mail = MailRelay(config) if smtp.configured(config.home) else None
        if self.mail is not None:
            self.scheduler.on_status = self.mail.on_status
        self._stop = threading.Event()
        self.server: WakeServer | None = None

    def _wake(self, slug: str, reason: object) -> None:
        timeout = self.config.health_timeout if reason == "recover" else WAKE_TIMEOUT
        try:
            lifecycle.wake(
                self.config,
                self.backend,
                slug,
                reason=str(reason),
                timeout=min(timeout, self.config.health_timeout),
                lock_wait=LOCK_WAIT,
            )
        except (FacilityNotFound, FacilityStopped):
            raise
        except Exception as e:
            event(
                "wake_error", logging.WARNING, slug=slug, reason=str(reason), error=type(e).__name__
            )
            raise

    def _sleep(self, slug: str, require_idle: object) -> bool:
        try:
            return lifecycle.put_to_sleep(
                self.config,
                self.backend,
                slug,
                require_idle=float(require_idle),  # type: ignore[arg-type]
                clock=self.clock,
            )
        except Exception as e:
            event("sleep_error", logging.WARNING, slug=slug, error=type(e).__name__)
            raise

    def start_server(self) -> WakeServer:
        """Listen on the wake socket (in its own thread)."""
        self.server = WakeServer(self.config.supervisor_socket, self.service)
        threading.Thread(target=self.server.serve_forever, name="wake-api", daemon=True).start()
        return self.server

    def run(self) -> None:
        """The scheduler loop, until stop(); reconciles at once on start."""
        event("started", tick=self.tick_seconds)
        while not self._stop.is_set():
            try:
                self.scheduler.tick()
                self.backup_expiry.tick()
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
        self.wakes.stop()
        self.sleeps.stop()
        self.scheduler.probes.stop()
        if self.mail is not None:
            self.mail.stop()

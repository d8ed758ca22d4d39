"""Sleep and wake of one facility, shared by the supervisor and the CLI (`facility sleep|wake`).

Putting a facility to sleep is a handshake with the gateway, so no request is ever cut off:
mark it asleep, route it to the activator, wait until nginx has applied that route, and only then
look again. If anything reached the facility meanwhile (or is still running in it), undo.

Written once over host/engine.py: callers hand in a FacilityEngine (cluster mode) or, on a single
host, the DockerBackend itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from medcell_common.interfaces import Desired, Health, RouteState
from provisioner.host import facility_http, locks, routes, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import FacilityEngine, engine_for
from provisioner.host.errors import (
    Busy,
    DockerError,
    FacilityNotFound,
    FacilityStopped,
    FacilityUnreachable,
    HealthTimeout,
    SweepTimeout,
    WakeFailed,
)
from provisioner.host.facility_http import FacilityStatus
from provisioner.host.service_spec import STOP_GRACE_SECONDS

log = logging.getLogger("medcell.lifecycle")

WAKE_REASONS = ("request", "deadline", "operator", "recover", "opening")
CLI_WAIT_SECONDS = 30.0  # `facility sleep` waits this long for in-flight work to end
APPLY_TIMEOUT = 5.0  # how long the gateway may take to reload with a new route
STOP_TIMEOUT = STOP_GRACE_SECONDS  # gunicorn's graceful shutdown, before Docker kills it
POLL_SECONDS = 0.25


def _event(event: str, slug: str, **fields: object) -> None:
    # Content-free by construction: only the slug, the event name, counts and durations.
    log.info(event, extra={"fields": {"event": event, "slug": slug, **fields}})


def put_to_sleep(
    config: Config,
    backend: DockerBackend | FacilityEngine,
    slug: str,
    *,
    require_idle: float | None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    lock_wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> bool:
    """Stop an idle facility's container, keeping its volumes; returns whether it now sleeps.

    require_idle=None (the operator's `facility sleep`): wait up to 30 s for in-flight work to end,
    else raise Busy. Otherwise only when it has been idle that many seconds with nothing running.
    """
    engine = engine_for(config, backend)
    with locks.facility_lock(config, slug, wait=lock_wait, on_wait=on_wait):
        where = engine.locate(slug)
        if where is None:
            raise FacilityNotFound(f"no facility {slug}")
        st = state_file.load(config, slug)
        if st.desired == Desired.STOPPED:
            if require_idle is None:
                raise FacilityStopped(f"facility {slug} is stopped; `facility start` runs it")
            return False
        if not where.running:
            # Already asleep, or it died: either way nothing runs; make state and route say asleep.
            if where.starting:
                # A service whose task is on its way: asleep means nothing starts it either.
                engine.sleep(slug, STOP_TIMEOUT)
            if not st.asleep:
                st.asleep, st.slept_at = True, clock()
                state_file.save(config, slug, st)
            if _route(config, slug) != RouteState.ASLEEP:
                routes.set_route(config, slug, RouteState.ASLEEP)
            return True
        deadline = clock() + CLI_WAIT_SECONDS
        while True:
            outcome = _handshake(config, engine, slug, st, require_idle, clock)
            if outcome is not None:
                return outcome
            if require_idle is not None:
                return False
            if clock() >= deadline:
                raise Busy(
                    f"facility {slug} is still handling requests, its deletion job, or mail "
                    "waiting for the relay"
                )
            sleep(POLL_SECONDS * 4)


def _quiet(status: FacilityStatus, require_idle: float | None) -> bool:
    """Nothing in flight, no deletion/rotation work, no mail waiting for the relay (it is
    drained first), and (if asked) idle long enough."""
    if status.inflight or status.busy or status.outbox:
        return False
    return require_idle is None or status.idle_seconds >= require_idle


def _handshake(
    config: Config,
    engine: FacilityEngine,
    slug: str,
    st: state_file.FacilityState,
    require_idle: float | None,
    clock: Callable[[], float],
) -> bool | None:
    """One attempt: True slept, False not idle (supervisor gives up), None retry (CLI waits)."""
    started = time.monotonic()
    try:
        before = facility_http.status(config, slug, now=clock())
    except FacilityUnreachable:
        _event("sleep_skipped", slug, reason="unreachable")
        return False
    if not _quiet(before, require_idle):
        return None
    st.asleep = True
    state_file.save(config, slug, st)
    generation = routes.set_route(config, slug, RouteState.ASLEEP)
    # Without a gateway no request can reach the facility, and a gateway that starts later reads
    # the current routes.json, so only a running gateway has to acknowledge the new route.
    if engine.gateway_running() and not routes.wait_applied(
        config, generation, timeout=APPLY_TIMEOUT
    ):
        # nginx may still send requests straight to the socket: stopping now could cut one off.
        _undo(config, slug, st, "gateway_lag")
        return False
    try:
        after = facility_http.status(config, slug, now=clock())
    except FacilityUnreachable:
        _undo(config, slug, st, "unreachable")
        return False
    if after.requests != before.requests or not _quiet(after, None):
        _undo(config, slug, st, "activity")
        return None
    # The deadline is saved before the stop: a supervisor killed in between must not leave a
    # sleeping facility that nothing wakes in time for its deletions.
    st.wake_at = after.next_deadline
    st.opens = list(after.opens)  # so it can be woken before its practice opens
    state_file.save(config, slug, st)
    try:
        engine.sleep(slug, STOP_TIMEOUT)
    except DockerError:
        _undo(config, slug, st, "stop_failed")
        return False
    st.slept_at = clock()
    state_file.save(config, slug, st)
    _event(
        "slept",
        slug,
        seconds=round(time.monotonic() - started, 3),
        wake_in=None if st.wake_at is None else round(st.wake_at - st.slept_at),
    )
    return True


def _undo(config: Config, slug: str, st: state_file.FacilityState, reason: str) -> None:
    st.asleep, st.wake_at = False, None
    state_file.save(config, slug, st)
    routes.set_route(config, slug, RouteState.RUNNING)
    _event("sleep_undone", slug, reason=reason)


def wake(
    config: Config,
    backend: DockerBackend | FacilityEngine,
    slug: str,
    *,
    reason: str,
    timeout: float | None = None,
    lock_wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Start an asleep facility and return once it answers on its socket; awake already is fine.

    Whether it was woken (False: it was awake already). Raises FacilityNotFound, FacilityStopped
    (the operator's decision), or WakeFailed.
    """
    if reason not in WAKE_REASONS:
        raise ValueError(f"unknown wake reason {reason!r}")
    started = time.monotonic()
    engine = engine_for(config, backend)
    timeout = timeout or config.health_timeout
    with locks.facility_lock(config, slug, wait=lock_wait, on_wait=on_wait):
        try:
            where = engine.locate(slug)
        except DockerError as e:
            raise WakeFailed(f"facility {slug} could not be woken: {e}") from e
        if where is None:
            raise FacilityNotFound(f"no facility {slug}")
        st = state_file.load(config, slug)
        if st.desired == Desired.STOPPED:
            raise FacilityStopped(f"facility {slug} is stopped; `facility start` runs it")
        running = where.running
        if running and not st.asleep and facility_http.healthy(config, slug):
            if _route(config, slug) != RouteState.RUNNING:
                facility_http.wait_swept(config, slug, timeout, clock)
            _mark_awake(config, slug, st)
            return False
        # Where a wake's time goes (logged with `woke`): the engine's start, the facility's own
        # start until it answers, its first sweep.
        phases = {"start": 0.0, "answer": 0.0, "sweep": 0.0}
        try:
            mark = time.monotonic()
            if not running:
                # Swarm: until its task runs (bounded by `timeout`), then the same health wait.
                engine.wake(slug, timeout)
            phases["start"], mark = time.monotonic() - mark, time.monotonic()
            # Routed to it only once it confirms that whatever fell due while it slept (or its
            # node was cut off) is deleted: no request sees a conversation past its deadline.
            phases["answer"] = facility_http.wait_ready(config, slug, timeout, clock)
            phases["sweep"] = time.monotonic() - mark - phases["answer"]
        except (DockerError, HealthTimeout) as e:
            kind = "start_failed" if isinstance(e, DockerError) else "health_timeout"
            if isinstance(e, SweepTimeout):
                kind = "sweep_timeout"
            st.health, st.error = Health.UNHEALTHY, f"wake failed: {kind}"
            state_file.save(config, slug, st)
            _event("wake_failed", slug, reason=reason, error=kind)
            raise WakeFailed(f"facility {slug} could not be woken ({kind})") from e
        _mark_awake(config, slug, st)
        _event(
            "woke",
            slug,
            reason=reason,
            seconds=round(time.monotonic() - started, 3),
            **{name: round(took, 3) for name, took in phases.items()},
        )
    return True


def _mark_awake(config: Config, slug: str, st: state_file.FacilityState) -> None:
    """State and route say running, touching each only if it says otherwise (no needless reload)."""
    if st.asleep or st.health != Health.OK or st.wake_at is not None or st.slept_at is not None:
        st.asleep, st.health, st.error = False, Health.OK, None
        st.wake_at = st.slept_at = None
        state_file.save(config, slug, st)
    if _route(config, slug) != RouteState.RUNNING:
        routes.set_route(config, slug, RouteState.RUNNING)


def _route(config: Config, slug: str) -> str | None:
    entry = ((routes.read_routes(config) or {}).get("facilities") or {}).get(slug)
    return entry.get("state") if isinstance(entry, dict) else None

"""routes.json v2: the gateway's only view of which facilities exist and how to reach them.

Every write holds home.routes_lock and increases `generation` by one; the gateway acknowledges
the generation nginx runs with in run/gateway/applied.json, which wait_applied watches.

In a cluster, the managers push the cluster's map (which node holds which facility) to every
node; the node keeps it beside routes.json (routes-map.json in the gateway's folder, where the
supervisor writes; its view of the cluster folder is masked), and every write of routes.json
adds the facilities the map puts on other nodes as remote entries. This node's own facilities
keep the states the supervisor and the CLI give them here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from medcell_common.interfaces import APPLIED_FILE, ROUTES_FILE, ROUTES_VERSION, Desired, RouteState
from provisioner.host import facility_http, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import HealthTimeout, InvalidArgument, StaleRoutes
from provisioner.host.home import routes_lock, write_json_atomic
from provisioner.host.state_file import FacilityState
from provisioner.host.validation import SLUG_RE

ROUTE_STATES = tuple(RouteState)
# What this node decides of its own facilities; remote entries come only from the cluster's map.
LOCAL_STATES = (RouteState.RUNNING, RouteState.ASLEEP, RouteState.STOPPED)
CLUSTER_MAP_FILE = "routes-map.json"
POLL_SECONDS = 0.02
APPLY_TIMEOUT = 5.0  # seconds to wait for the gateway to serve a changed route
# A map may put facilities on this node that have no route here yet (one a manager just made):
# those that should be awake get this long in all to answer on their sockets.
NEW_LOCAL_WAIT = 5.0

log = logging.getLogger("medcell.routes")


def routes_path(config: Config) -> Path:
    return config.gateway_dir / ROUTES_FILE


def cluster_map_path(config: Config) -> Path:
    return config.gateway_dir / CLUSTER_MAP_FILE


def route_state(container_running: bool, st: FacilityState) -> str:
    """How the gateway should treat the facility: straight to it, via the activator, or 503."""
    if st.desired == Desired.STOPPED and not container_running:
        return RouteState.STOPPED
    if st.asleep:
        return RouteState.ASLEEP
    if container_running:
        return RouteState.RUNNING
    # Should run but does not: the activator asks the supervisor to start it on the next request.
    return RouteState.ASLEEP


def read_routes(config: Config) -> dict | None:
    """The current routes document, or None if there is none (or it is unreadable)."""
    try:
        routes = json.loads(routes_path(config).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return routes if isinstance(routes, dict) else None


def publish(config: Config, states: dict[str, str]) -> int:
    """Rewrite the whole table from {slug: route state}; returns the new generation."""
    for state in states.values():
        _check_state(state)
    with routes_lock(config):
        generation = _next_generation(config, read_routes(config))
        _write(config, generation, dict(states))
    return generation


def set_route(config: Config, slug: str, state: str | None) -> int:
    """Change (or, with None, remove) one facility's entry; returns the new generation."""
    if state is not None:
        _check_state(state)
    with routes_lock(config):
        current = read_routes(config)
        facilities = _table(current)
        if facilities is None:
            facilities = _rebuilt(config)
        if state is None:
            facilities.pop(slug, None)
        else:
            facilities[slug] = state
        generation = _next_generation(config, current)
        _write(config, generation, facilities)
    return generation


def set_cluster_map(
    config: Config, node: str, generation: int, facilities: dict[str, dict[str, str]]
) -> int:
    """Remember the cluster's map {slug: {"node", "address"}} as seen by `node` (this one) and
    rewrite routes.json with it; returns the new routes generation.

    Raises StaleRoutes for a map older than the one held (or as old, but different): two
    managers pushing at once must not let the older map win. The same map again changes nothing.
    """
    document = {"generation": generation, "node": node, "facilities": facilities}
    new_here = _new_local_states(config, node, facilities)
    with routes_lock(config):
        held = read_cluster_map(config)
        if held is not None and generation <= held["generation"]:
            if held == document:  # a retry of the push this node already applied
                generation_now = (read_routes(config) or {}).get("generation")
                return generation_now if isinstance(generation_now, int) else 0
            raise StaleRoutes(
                f"routes map generation {generation} is not newer than {held['generation']}"
            )
        write_json_atomic(cluster_map_path(config), document, mode=0o600)
        current = read_routes(config)
        known = _table(current)
        # What this node decided of its own facilities stands; what it had to guess (a lost
        # routes.json rebuilt from the state files) yields to what the sockets said.
        if known is None:
            facilities_now = {**_rebuilt(config), **new_here}
        else:
            facilities_now = {**new_here, **known}
        routes_generation = _next_generation(config, current)
        _write(config, routes_generation, facilities_now)
    return routes_generation


def _new_local_states(
    config: Config, node: str, facilities: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Route states for the facilities the map puts on this node that it has a state file of
    but no route for, so that a facility a manager just created here is served as soon as the
    map names it. One that should be awake is asked over its socket (all of them within
    NEW_LOCAL_WAIT); one that does not answer is routed asleep, so its first request wakes it,
    as after a lost routes.json."""
    table = _table(read_routes(config)) or {}
    deadline = time.monotonic() + NEW_LOCAL_WAIT
    states = {}
    for slug, entry in sorted(facilities.items()):
        if entry["node"] != node or slug in table:
            continue
        if not state_file.state_path(config, slug).exists():
            continue  # nothing of it here yet (its node is still being made ready)
        st = state_file.load(config, slug)
        running = False
        if st.desired == Desired.RUNNING and not st.asleep:
            try:
                facility_http.wait_healthy(config, slug, max(0.0, deadline - time.monotonic()))
                running = True
            except HealthTimeout:
                pass
        states[slug] = route_state(running, st)
    return states


def read_cluster_map(config: Config) -> dict | None:
    """The cluster's map this node holds: {"generation", "node", "facilities"}, or None."""
    try:
        held = json.loads(cluster_map_path(config).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not (
        isinstance(held, dict)
        and isinstance(held.get("generation"), int)
        and isinstance(held.get("node"), str)
        and isinstance(held.get("facilities"), dict)
        and all(
            SLUG_RE.fullmatch(slug)
            and isinstance(entry, dict)
            and isinstance(entry.get("node"), str)
            and isinstance(entry.get("address"), str)
            for slug, entry in held["facilities"].items()
        )
    ):
        log.warning("cluster_map_unusable", extra={"fields": {"event": "cluster_map_unusable"}})
        return None
    return held


def _remote_entries(config: Config) -> dict[str, dict[str, str]]:
    """The routes of facilities the cluster's map puts on other nodes."""
    held = read_cluster_map(config)
    if held is None:
        return {}
    return {
        slug: {"state": RouteState.REMOTE, "node": entry["node"], "address": entry["address"]}
        for slug, entry in held["facilities"].items()
        if entry["node"] != held["node"]
    }


def applied_generation(config: Config) -> int | None:
    """The generation the gateway's nginx last applied, or None if it has not said."""
    try:
        raw = json.loads((config.gateway_run_dir / APPLIED_FILE).read_text())
    except (OSError, ValueError):
        return None
    generation = raw.get("generation") if isinstance(raw, dict) else None
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else None


def wait_applied(
    config: Config,
    generation: int,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait until the gateway applied `generation` (or a later one); False on timeout."""
    deadline = clock() + timeout
    while True:
        applied = applied_generation(config)
        if applied is not None and applied >= generation:
            return True
        if clock() >= deadline:
            return False
        sleep(POLL_SECONDS)


def apply_route(
    config: Config,
    backend: DockerBackend,
    slug: str,
    state: str | None,
    progress: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Publish (None: remove) one facility's route; with a gateway running, wait until it is
    served.

    nginx follows routes.json within a fraction of a second, but a facility that `create` or
    `start` just reported ready must not answer 404 or 503 to the very next request.
    """
    generation = set_route(config, slug, state)
    gateway = backend.container(config.gateway_container)
    if gateway is None or gateway.status != "running":
        return  # a gateway started later reads the whole table first
    if not wait_applied(config, generation, timeout=APPLY_TIMEOUT, clock=clock, sleep=sleep):
        progress(f"the gateway has not applied the route of {slug} yet")


def _table(document: dict | None) -> dict[str, str] | None:
    """{slug: state} of a usable routes document, or None if any part of it is damaged."""
    if not isinstance(document, dict) or document.get("version") != ROUTES_VERSION:
        return None
    entries = document.get("facilities")
    if not isinstance(entries, dict):
        return None
    table = {}
    for slug, entry in entries.items():
        state = entry.get("state") if isinstance(entry, dict) else None
        if not SLUG_RE.fullmatch(slug) or state not in ROUTE_STATES:
            return None
        if state != RouteState.REMOTE:  # those are the cluster map's, added on every write
            table[slug] = state
    return table


def _rebuilt(config: Config) -> dict[str, str]:
    """The table from the state files alone, when routes.json is missing or damaged.

    Changing one entry of a damaged table would drop every other facility's route (a 404 for its
    patients). Without asking Docker, a facility that should run is routed as asleep: its first
    request goes to the activator, whose wake finds it running and routes it straight again.
    """
    states = state_file.load_all(config)
    if states and routes_path(config).exists():
        log.warning("routes_rebuilt", extra={"fields": {"event": "routes_rebuilt"}})
    return {slug: route_state(False, st) for slug, st in states.items()}


def _check_state(state: str) -> None:
    if state not in LOCAL_STATES:
        raise InvalidArgument(f"route state {state!r} is not one of {', '.join(LOCAL_STATES)}")


def _next_generation(config: Config, routes: dict | None) -> int:
    generation = (routes or {}).get("generation")
    if not isinstance(generation, int) or isinstance(generation, bool):
        generation = 0
    # A lost or damaged file must not restart the count below what the gateway already applied,
    # or wait_applied would take the old acknowledgement for the new table.
    return max(generation, applied_generation(config) or 0) + 1


def _write(config: Config, generation: int, states: dict[str, str]) -> None:
    entries: dict[str, dict[str, str]] = {slug: {"state": state} for slug, state in states.items()}
    # A facility the cluster put on another node is forwarded there, even while what is left of
    # it here (during a move) still has a local state.
    entries.update(_remote_entries(config))
    document = {
        "version": ROUTES_VERSION,
        "generation": generation,
        "facilities": {slug: entries[slug] for slug in sorted(entries)},
    }
    config.gateway_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_json_atomic(routes_path(config), document, mode=0o644)

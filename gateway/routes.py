"""The routing table: which facility slug goes to which upstream, re-read when routes.json changes.

The provisioner replaces routes.json atomically (temporary file + rename). Every lookup may stat the
file, at most once per refresh interval, and reloads it when its inode, size or modification time
changed — so a facility created, stopped, started or deleted is served accordingly within well under
a second, without restarting the gateway and without the gateway needing the Docker socket.
"""

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .paths import SLUG

log = logging.getLogger("medcell.gateway")

STATES = ("running", "stopped")


@dataclass(frozen=True)
class Route:
    slug: str
    upstream: str  # "http://host:port", nothing else
    running: bool


class RouteTable:
    """Thread-safe view of routes.json that follows the file's changes."""

    def __init__(
        self,
        path: str,
        refresh_interval: float = 0.1,
        on_change: Callable[[dict[str, Route]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self.refresh_interval = refresh_interval
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._signature: tuple | None = None
        self._checked_at = float("-inf")

    def get(self, slug: str) -> Route | None:
        """The route for `slug`, or None when no such facility is known."""
        self.refresh()
        route = self._routes.get(slug)
        if route is None or not route.running:
            # A facility created or started a moment ago must not be refused until the next
            # interval: look again now. Only refusals pay for this one stat.
            self.refresh(force=True)
            route = self._routes.get(slug)
        return route

    def refresh(self, force: bool = False) -> None:
        """Reload routes.json if it changed; unless forced, look at most once per interval.

        A forced refresh (before refusing a request) waits for a reload already under way and
        reads the file whatever its stat says: a rewrite can keep inode, size and a coarse mtime
        (running and stopped are the same length), and a refusal must never rest on a stale table.
        """
        if force:
            with self._lock:
                self._checked_at = self._clock()
                self._reload_if_changed(always=True)
            return
        if self._clock() - self._checked_at < self.refresh_interval:
            return
        # Only one thread stats and parses; the others keep serving the current table meanwhile.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._checked_at = self._clock()
            self._reload_if_changed()
        finally:
            self._lock.release()

    def _reload_if_changed(self, always: bool = False) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            signature = None
        else:
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if signature == self._signature and not always:
            return
        if signature is None:
            routes: dict[str, Route] = {}
        else:
            routes = self._load()
            if routes is None:
                # Keep serving the last good table; retry next interval (signature not recorded).
                return
        self._signature = signature
        if routes != self._routes:
            self._routes = routes
            if self._on_change:
                self._on_change(routes)

    def _load(self) -> dict[str, Route] | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError):
            log.warning(json.dumps({"event": "routes_unreadable"}))
            return None
        if not isinstance(document, dict) or document.get("version") != 1:
            log.warning(json.dumps({"event": "routes_unsupported_version"}))
            return None
        facilities = document.get("facilities")
        if not isinstance(facilities, dict):
            log.warning(json.dumps({"event": "routes_malformed"}))
            return None
        routes = {}
        for slug, entry in facilities.items():
            route = parse_route(slug, entry)
            if route is None:
                log.warning(json.dumps({"event": "route_skipped", "reason": "malformed entry"}))
                continue
            routes[slug] = route
        return routes


def parse_route(slug: object, entry: object) -> Route | None:
    """A Route from one routes.json entry, or None if anything about it is off."""
    if not isinstance(slug, str) or not SLUG.fullmatch(slug) or not isinstance(entry, dict):
        return None
    state = entry.get("state")
    upstream = entry.get("upstream")
    if state not in STATES or not isinstance(upstream, str):
        return None
    try:
        parts = urlsplit(upstream)
        port = parts.port
    except ValueError:
        return None
    # Only a bare origin: a path, query or credentials here would be a way to reach something else.
    if (
        parts.scheme != "http"
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    origin = f"http://{host}" + (f":{port}" if port else "")
    return Route(slug=slug, upstream=origin, running=state == "running")

"""The per-client wake budget: how many sleeping facilities one client may wake in a window.

A wake costs the host a facility's memory for its idle time, so without a budget one client could
wake every facility of a host into swap. A client (an IPv4 address, or an IPv6 /64: one
subscriber's network) may cause at most `limit` wakes of distinct facilities per `window` seconds.
Asking again for a facility it woke within the window costs nothing, and neither does joining a
wake that someone else already started; requests to awake facilities never reach the activator.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CLIENTS = 65536  # clients remembered at once; the oldest are forgotten first


def client_key(address: str) -> str:
    """The unit a budget is kept for: the IPv4 address, or the IPv6 /64 it lies in."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "unknown"  # nginx always sets it; anything else shares one budget
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class WakeBudget:
    """Thread-safe; `charge` decides and records in one step."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        # client -> {slug: time of its wake}, clients in order of their last wake
        self._clients: OrderedDict[str, dict[str, float]] = OrderedDict()

    def charge(self, client: str, slug: str) -> float | None:
        """None if `client` may wake `slug` now (and count it); else seconds until it may."""
        if self.limit <= 0:
            return None
        now = self.clock()
        with self._lock:
            woken = self._clients.get(client, {})
            woken = {s: t for s, t in woken.items() if now - t < self.window}
            if slug not in woken and len(woken) >= self.limit:
                self._clients[client] = woken
                return max(1.0, min(woken.values()) + self.window - now)
            woken.setdefault(slug, now)
            self._clients[client] = woken
            self._clients.move_to_end(client)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            return None

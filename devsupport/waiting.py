"""Loopback ports and waiting for something to become true, without fixed sleeps."""

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 15) -> T:
    """Call `probe` until `done` accepts its result or `timeout` passes; return the last result.

    The caller asserts on what it returns, so a failure shows what was seen last.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if done(seen) or time.monotonic() >= deadline:
            return seen
        time.sleep(0.05)


def wait_for_status(url: str, status: int, timeout: float = 15, **request: object) -> int:
    """GET `url` until it answers `status` or `timeout` passes; return the last status seen.

    No answer (refused, reset, timed out) counts as status 0. Extra keyword arguments go to
    `requests.get`; `*.localhost` names are reached on loopback (devsupport.localhost).
    """
    import requests

    from devsupport import localhost

    def probe() -> int:
        try:
            return localhost.get(url, timeout=2, **request).status_code
        except requests.RequestException:
            return 0

    return eventually(probe, lambda seen: seen == status, timeout)

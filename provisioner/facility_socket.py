"""HTTP to a facility over its unix socket (the only way in: the container has no network)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provisioner.config import Config
from provisioner.errors import FacilityUnreachable, HealthTimeout
from provisioner.opening import parse_opens

POLL_SECONDS = 0.02
# sun_path holds 108 bytes; longer paths are reached through the directory's /proc/self/fd entry.
_SUN_PATH_MAX = 100


@dataclass(frozen=True)
class FacilityStatus:
    """What a facility tells about itself: load and its next deadline, nothing else."""

    inflight: int
    requests: int
    idle_seconds: float
    busy: bool
    next_deadline: float | None
    outbox: int = 0  # mails waiting for the supervisor's relay
    opens: tuple[int, ...] = ()  # starts of its opening hours (provisioner/opening.py)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect(sock, self.path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _connect(sock: socket.socket, path: Path) -> None:
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        sock.connect(str(path))
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)


def request(
    config: Config,
    slug: str,
    target: str,
    timeout: float,
    method: str = "GET",
    body: dict | None = None,
) -> tuple[int, bytes]:
    """GET (or send JSON to) `target` on the facility: (status, body). Raises OSError or
    HTTPException."""
    connection = _UnixConnection(config.facility_socket(slug), timeout)
    headers = {"Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def healthy(config: Config, slug: str, timeout: float = 1.0) -> bool:
    """Whether the facility answers /healthz with 200 right now."""
    try:
        code, _ = request(config, slug, "/healthz", timeout)
    except (OSError, http.client.HTTPException):
        return False
    return code == 200


def status(config: Config, slug: str, timeout: float = 2.0) -> FacilityStatus:
    """The facility's /_medcell/status; FacilityUnreachable if it does not answer properly."""
    try:
        code, body = request(config, slug, "/_medcell/status", timeout)
    except (OSError, http.client.HTTPException) as e:
        raise FacilityUnreachable(f"facility {slug} does not answer on its socket ({e})") from e
    if code != 200:
        raise FacilityUnreachable(f"facility {slug} answered its status with HTTP {code}")
    try:
        raw = json.loads(body)
        deadline = raw["next_deadline"]
        return FacilityStatus(
            inflight=int(raw["inflight"]),
            requests=int(raw["requests"]),
            idle_seconds=float(raw["idle_seconds"]),
            busy=bool(raw["busy"]),
            next_deadline=None if deadline is None else float(deadline),
            outbox=int(raw.get("outbox", 0)),
            opens=parse_opens(raw.get("opens")),
        )
    except (ValueError, TypeError, KeyError) as e:
        raise FacilityUnreachable(f"facility {slug} sent an unreadable status") from e


def wait_healthy(
    config: Config,
    slug: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    alive: Callable[[], None] | None = None,
) -> None:
    """Poll /healthz every 20 ms until it answers; HealthTimeout after `timeout` seconds.

    `alive`, if given, is called between polls and may raise to give up early (a dead container).
    """
    deadline = clock() + timeout
    while True:
        left = deadline - clock()
        if healthy(config, slug, timeout=max(0.05, min(1.0, left))):
            return
        if alive is not None:
            alive()
        if clock() >= deadline:
            raise HealthTimeout(
                f"facility {slug} did not answer on its socket within {timeout:.0f}s; "
                f"see `docker logs {config.facility(slug).container}`"
            )
        sleep(POLL_SECONDS)

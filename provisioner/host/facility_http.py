"""HTTP to a facility over its unix socket (the only way in: the container has no network)."""

from __future__ import annotations

import http.client
import io
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from medcell_common import strictjson
from medcell_common.interfaces import DELETION_LAG_BUCKETS, DeletionField, StatusField
from medcell_common.receipts import REASONS
from medcell_common.rules import MAX_RETENTION
from medcell_common.strictjson import StrictJSONError
from provisioner.host.config import Config
from provisioner.host.errors import FacilityUnreachable, HealthTimeout, SweepTimeout
from provisioner.host.opening import parse_opens

POLL_SECONDS = 0.02
# A facility is treated as hostile: every exchange has one deadline for all of it (connect, send,
# headers, body) and a cap on the bytes read, so a process that trickles or floods can cost the
# supervisor neither a thread for long nor its memory.
ANSWER_LIMIT = 4 * 1024 * 1024  # the largest answer: a batch of outbox mails
STATUS_LIMIT = 64 * 1024  # /healthz and /_medcell/status answer ~200 bytes
# The furthest a facility's next deadline can honestly be: an expiry (at most the retention) or
# its daily key rotation. A later one is taken as this, so the facility is looked at by then.
DEADLINE_HORIZON = float(MAX_RETENTION + 86400)

log = logging.getLogger("medcell.facility_socket")


class AnswerTooLarge(http.client.HTTPException):
    """The facility sent more than the exchange allows."""


class UntrustedSocket(OSError):
    """The facility's socket path is not a socket owned by the facility's user."""


@dataclass(frozen=True)
class FacilityStatus:
    """What a facility tells about itself: load and its next deadline, nothing else."""

    inflight: int
    requests: int
    idle_seconds: float
    busy: bool
    next_deadline: float | None
    outbox: int = 0  # mails waiting for the supervisor's relay
    opens: tuple[int, ...] = ()  # starts of its opening hours (provisioner/host/opening.py)
    deletions: Deletions | None = None  # its running totals (None: it reports none)
    storage: tuple[int, int] | None = None  # bytes of its database in use, its quota


@dataclass(frozen=True)
class Deletions:
    """A facility's running totals of deletions: by reason, and the expired ones by lateness
    (a count per DELETION_LAG_BUCKETS bucket, then the rest; their sum in ms)."""

    reasons: tuple[tuple[str, int], ...]
    lag_buckets: tuple[int, ...]
    lag_sum_ms: int


def parse_deletions(raw: object) -> Deletions | None:
    """The status' `deletions` read strictly: exactly the known reasons and buckets, whole
    numbers in range; anything else is refused (StrictJSONError), never a label of its own."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != set(DeletionField):
        raise StrictJSONError("deletions must have exactly its agreed fields")
    reasons = raw[DeletionField.REASONS]
    if not isinstance(reasons, dict) or set(reasons) != set(REASONS):
        raise StrictJSONError("deletions.reasons must name exactly the agreed reasons")
    buckets = raw[DeletionField.LAG_BUCKETS]
    if not isinstance(buckets, list) or len(buckets) != len(DELETION_LAG_BUCKETS) + 1:
        raise StrictJSONError("deletions.lag_buckets must have one count per bucket")
    return Deletions(
        reasons=tuple((r, strictjson.integer(reasons[r], "deletions.reasons")) for r in REASONS),
        lag_buckets=tuple(strictjson.integer(n, "deletions.lag_buckets") for n in buckets),
        lag_sum_ms=strictjson.integer(raw[DeletionField.LAG_SUM_MS], "deletions.lag_sum_ms"),
    )


class _BoundedReader(io.RawIOBase):
    """The socket's bytes until the deadline and up to the limit, never more."""

    def __init__(self, owner: _BoundedSocket):
        self.owner, self.sock = owner, owner.sock
        self.deadline, self.limit = owner.deadline, owner.limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.owner.release()
        super().close()

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the facility did not answer within the exchange's deadline")
        self.sock.settimeout(left)
        # One byte beyond the limit is asked for, so an answer of exactly the limit still ends.
        view = memoryview(buffer)[: max(1, min(len(buffer), self.limit - self.count + 1))]
        n = self.sock.recv_into(view)
        self.count += n
        if self.count > self.limit:
            raise AnswerTooLarge(f"the facility's answer is larger than {self.limit} bytes")
        return n


class _BoundedSocket:
    """What http.client needs of a socket, with the exchange's deadline and byte cap."""

    def __init__(self, sock: socket.socket, deadline: float, limit: int):
        self.sock, self.deadline, self.limit = sock, deadline, limit
        # Like a socket's makefile(): closed for real once the connection and the response
        # reading from it are both closed (http.client closes the connection first).
        self._readers, self._closed = 0, False

    def sendall(self, data: bytes) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the facility did not take the request within the deadline")
        self.sock.settimeout(left)
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_BoundedReader(self))

    def release(self) -> None:
        self._readers -= 1
        if self._closed:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self.sock.close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, config: Config, slug: str, deadline: float, limit: int):
        super().__init__("localhost")
        self.config, self.slug, self.deadline, self.limit = config, slug, deadline, limit

    def connect(self) -> None:
        self.sock = _BoundedSocket(
            open_socket(self.config, self.slug, self.deadline), self.deadline, self.limit
        )


def open_socket(config: Config, slug: str, deadline: float) -> socket.socket:
    """A connection to the facility's own socket, and to nothing else its directory may hold.

    The facility owns its socket directory, so it could put a symlink there (to another
    facility's socket, or the Docker socket) or a plain file. The path is taken only when lstat
    shows a socket owned by the facility's user; after connecting, the peer's uid must be that
    user's and the path must still be the same socket (a swap in between is refused too).
    """
    path = config.facility_socket(slug)
    # O_PATH: the directory is the facility's (mode 0711), searchable but not readable for us.
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        before = _trusted(config, slug, os.stat(path.name, dir_fd=directory, follow_symlinks=False))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            # Through the directory's descriptor: sun_path holds only 108 bytes.
            sock.connect(f"/proc/self/fd/{directory}/{path.name}")
            after = os.stat(path.name, dir_fd=directory, follow_symlinks=False)
            peer_uid = struct.unpack(
                "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )[1]
            if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                _refuse(slug, "swapped")
            if peer_uid != config.facility_uid:
                _refuse(slug, "peer_not_facility_user")
        except BaseException:
            sock.close()
            raise
        return sock
    finally:
        os.close(directory)


def _trusted(config: Config, slug: str, info: os.stat_result) -> os.stat_result:
    if stat.S_ISLNK(info.st_mode):
        _refuse(slug, "symlink")
    if not stat.S_ISSOCK(info.st_mode):
        _refuse(slug, "not_a_socket")
    if info.st_uid != config.facility_uid:
        _refuse(slug, "not_facility_user")
    return info


def _refuse(slug: str, reason: str) -> None:
    # The slug and a fixed word only: never the link's target nor anything the file holds.
    log.warning(
        "socket_refused",
        extra={"fields": {"event": "socket_refused", "slug": slug, "reason": reason}},
    )
    raise UntrustedSocket(f"facility {slug}'s socket path is not its socket ({reason})")


def request(
    config: Config,
    slug: str,
    target: str,
    timeout: float,
    method: str = "GET",
    body: dict | None = None,
    limit: int = ANSWER_LIMIT,
) -> tuple[int, bytes]:
    """GET (or send JSON to) `target` on the facility: (status, body).

    The whole exchange ends within `timeout` seconds and reads at most `limit` bytes; raises
    OSError (TimeoutError, UntrustedSocket) or HTTPException (AnswerTooLarge) otherwise.
    """
    deadline = time.monotonic() + timeout
    connection = _UnixConnection(config, slug, deadline, limit)
    headers = {"Connection": "close"}
    data = None
    if body is not None:
        data = strictjson.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        if response.length is not None and response.length > limit:
            raise AnswerTooLarge(f"the facility announced more than {limit} bytes")
        answer = bytearray()
        while chunk := response.read(64 * 1024):
            answer += chunk
        return response.status, bytes(answer)
    finally:
        connection.close()


def healthy(config: Config, slug: str, timeout: float = 1.0) -> bool:
    """Whether the facility answers /healthz with 200 right now."""
    try:
        code, _ = request(config, slug, "/healthz", timeout, limit=STATUS_LIMIT)
    except (OSError, http.client.HTTPException):
        return False
    return code == 200


def status(
    config: Config, slug: str, timeout: float = 2.0, now: float | None = None
) -> FacilityStatus:
    """The facility's /_medcell/status; FacilityUnreachable if it does not answer properly.

    `now` (unix seconds, default the wall clock) bounds the reported deadline (see parse_status).
    """
    try:
        code, body = request(config, slug, "/_medcell/status", timeout, limit=STATUS_LIMIT)
    except (OSError, http.client.HTTPException) as e:
        raise FacilityUnreachable(
            f"facility {slug} does not answer on its socket ({type(e).__name__})"
        ) from e
    if code != 200:
        raise FacilityUnreachable(f"facility {slug} answered its status with HTTP {code}")
    try:
        return parse_status(body, time.time() if now is None else now)
    except (StrictJSONError, KeyError) as e:
        raise FacilityUnreachable(f"facility {slug} sent an unreadable status") from e


def parse_status(body: bytes, now: float) -> FacilityStatus:
    """A status answer read strictly: every field of its type, finite, in range.

    The next deadline is clamped into [now, now + DEADLINE_HORIZON]: an overdue one is due now,
    and none can put the facility out of sight for longer than the horizon.
    """
    raw = strictjson.loads(body)
    if not isinstance(raw, dict):
        raise StrictJSONError("the status is not an object")
    deadline = raw[StatusField.NEXT_DEADLINE]
    if deadline is not None:
        deadline = strictjson.number(deadline, StatusField.NEXT_DEADLINE)
        deadline = min(max(deadline, now), now + DEADLINE_HORIZON)
    return FacilityStatus(
        inflight=strictjson.integer(raw[StatusField.INFLIGHT], StatusField.INFLIGHT),
        requests=strictjson.integer(raw[StatusField.REQUESTS], StatusField.REQUESTS),
        idle_seconds=strictjson.number(
            raw[StatusField.IDLE_SECONDS], StatusField.IDLE_SECONDS, low=0.0
        ),
        busy=strictjson.flag(raw[StatusField.BUSY], StatusField.BUSY),
        next_deadline=deadline,
        outbox=strictjson.integer(raw.get(StatusField.OUTBOX, 0), StatusField.OUTBOX),
        opens=parse_opens(raw.get(StatusField.OPENS)),
        deletions=parse_deletions(raw.get(StatusField.DELETIONS)),
        storage=parse_storage(raw.get(StatusField.STORAGE)),
    )


def parse_storage(raw: object) -> tuple[int, int] | None:
    """The status' `storage`: exactly used_bytes and quota_bytes, whole numbers in range."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"used_bytes", "quota_bytes"}:
        raise StrictJSONError("storage must have exactly used_bytes and quota_bytes")
    return (
        strictjson.integer(raw["used_bytes"], "storage.used_bytes"),
        strictjson.integer(raw["quota_bytes"], "storage.quota_bytes"),
    )


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


def swept(status: FacilityStatus, now: float) -> bool:
    """Whether a status confirms that nothing of the facility's own work is overdue: its deletion
    job is not busy (its first sweep after start is done) and its next deadline lies ahead
    (parse_status makes an overdue one `now`)."""
    return not status.busy and (status.next_deadline is None or status.next_deadline > now)


def wait_swept(
    config: Config,
    slug: str,
    timeout: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll the status until it confirms `swept`; SweepTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        now = clock()
        left = deadline - time.monotonic()
        try:
            if swept(status(config, slug, max(0.05, min(2.0, left)), now=now), now):
                return
        except FacilityUnreachable:
            pass  # restarting, or not quite up: asked again until the time is up
        if time.monotonic() >= deadline:
            raise SweepTimeout(
                f"facility {slug} did not confirm its overdue deletions done within "
                f"{timeout:.0f}s; see `docker logs {config.facility(slug).container}`"
            )
        sleep(POLL_SECONDS)


def wait_ready(
    config: Config,
    slug: str,
    timeout: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll the status every 20 ms until it confirms `swept`; returns the seconds until the
    facility first answered.

    One exchange per poll: a waking facility is asked its status only, not /healthz first and
    then its status (each request costs its CPU while others start beside it). HealthTimeout if
    it never answered within `timeout` seconds, SweepTimeout if it answered but did not confirm.
    """
    began = time.monotonic()
    deadline = began + timeout
    answered: float | None = None
    while True:
        now = clock()
        left = deadline - time.monotonic()
        try:
            current = status(config, slug, max(0.05, min(2.0, left)), now=now)
        except FacilityUnreachable:
            current = None  # not up yet (no socket), restarting, or an unreadable answer
        if current is not None:
            if answered is None:
                answered = time.monotonic() - began
            if swept(current, now):
                return answered
        if time.monotonic() >= deadline:
            container = config.facility(slug).container
            if answered is None:
                raise HealthTimeout(
                    f"facility {slug} did not answer on its socket within {timeout:.0f}s; "
                    f"see `docker logs {container}`"
                )
            raise SweepTimeout(
                f"facility {slug} did not confirm its overdue deletions done within "
                f"{timeout:.0f}s; see `docker logs {container}`"
            )
        sleep(POLL_SECONDS)

"""The wake API on a unix socket, the gateway's only way to ask anything: `POST /wake/<slug>`."""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from medcell_common.interfaces import HELD_HEADER, WAKE_PATH, WAKE_STATUS, RouteState, WakeError
from provisioner.host.errors import FacilityNotFound, FacilityStopped, InvalidArgument, NoRoom
from provisioner.host.validation import check_slug
from provisioner.supervisor.jobs import Job, JobPool, QueueFull
from provisioner.supervisor.logs import event

MAX_CONNECTIONS = 256  # at least; held requests beyond these are answered 503 at once
RETRY_AFTER = "5"
READ_TIMEOUT = 5.0  # a client that does not send its request line in this time is dropped
# The most a request may have been held before its wake was asked for (HELD_HEADER) that is
# believed: the gateway's wake timeout is far shorter.
MAX_HELD_SECONDS = 600.0


def _error(code: WakeError, message: str) -> tuple[int, dict]:
    return WAKE_STATUS[code], {"error": {"code": code, "message": message}}


class WakeService:
    """Decides the answer to one wake request; the HTTP layer below only carries it."""

    def __init__(
        self,
        wakes: JobPool,
        known: Callable[[str], bool],
        wait: float,
        held: Callable[[str, float], None] = lambda slug, since: None,
    ):
        self.wakes, self.known, self.wait = wakes, known, wait
        self.held = held  # told when (time.monotonic()) the request behind a wake was first held

    def wake(self, slug: str, held_for: float = 0.0) -> tuple[int, dict]:
        """`held_for`: seconds the gateway held the request before it asked (HELD_HEADER)."""
        try:
            check_slug(slug)
        except InvalidArgument:
            return _error(WakeError.NOT_FOUND, "no such facility")
        if not self.known(slug):
            return _error(WakeError.NOT_FOUND, "no such facility")
        self.held(slug, time.monotonic() - held_for)
        try:
            job = self.wakes.submit(slug, "request", merge=_as_request)
        except QueueFull:
            event("wake_refused", slug=slug, reason="queue_full")
            return _error(WakeError.BUSY, "too many facilities are waking; try again shortly")
        return self._answer(slug, job)

    def _answer(self, slug: str, job: Job) -> tuple[int, dict]:
        if not job.wait(self.wait):
            return _error(WakeError.WAKE_FAILED, "the facility is taking too long to wake")
        if isinstance(job.error, FacilityNotFound):
            return _error(WakeError.NOT_FOUND, "no such facility")
        if isinstance(job.error, FacilityStopped):
            return _error(WakeError.FACILITY_STOPPED, "the facility was stopped by its operator")
        if isinstance(job.error, NoRoom):
            return _error(WakeError.NO_ROOM, "the host holds as many awake facilities as it may")
        if job.error is not None:
            return _error(WakeError.WAKE_FAILED, "the facility could not be woken")
        return 200, {"slug": slug, "state": RouteState.RUNNING}


def held_seconds(value: str | None) -> float:
    """HELD_HEADER's whole milliseconds as seconds; anything else (or more than
    MAX_HELD_SECONDS) is not believed and counts as 0."""
    if value is None or not re.fullmatch(r"[0-9]{1,9}", value):
        return 0.0
    seconds = int(value) / 1000
    return seconds if seconds <= MAX_HELD_SECONDS else 0.0


def _as_request(job: Job) -> None:
    # A request joined a deadline wake: the facility is in use, so it must not go straight back
    # to sleep once its deadline work is done.
    job.arg = "request"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "medcell-supervisor"
    sys_version = ""
    timeout = READ_TIMEOUT
    server: WakeServer

    def do_POST(self) -> None:
        prefix = WAKE_PATH
        if not self.path.startswith(prefix) or "?" in self.path:
            self._send(*_error(WakeError.NOT_FOUND, "the only endpoint is POST /wake/<slug>"))
            return
        held_for = held_seconds(self.headers.get(HELD_HEADER))
        self._send(*self.server.service.wake(self.path[len(prefix) :], held_for))

    def do_GET(self) -> None:
        message = "the only endpoint is POST /wake/<slug>"
        self._send(405, {"error": {"code": "method_not_allowed", "message": message}})

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        if status == 503:
            self.send_header("Retry-After", RETRY_AFTER)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def address_string(self) -> str:
        return "unix"  # AF_UNIX peers have no address

    def log_message(self, format: str, *args) -> None:
        pass  # the service logs content-free events itself; paths carry slugs from anyone


def _canned(status: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nRetry-After: {RETRY_AFTER}\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_BUSY = _canned("503 Service Unavailable", "busy", "too many wake requests at once")


class WakeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Threaded HTTP over AF_UNIX, with a cap on connections held at once."""

    daemon_threads = True
    block_on_close = False
    # A burst of held requests must queue in the kernel, not fail to connect (the default is 5).
    request_queue_size = 128

    def __init__(self, path: Path, service: WakeService, max_connections: int = MAX_CONNECTIONS):
        self.service = service
        self.max_connections = max_connections
        self._active = 0
        self._count_lock = threading.Lock()
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # left by a supervisor that did not stop cleanly
        super().__init__(str(path), _Handler)
        # The gateway runs as another user; the directory's mount is what limits who gets here.
        os.chmod(path, 0o666)
        self.path = path

    @property
    def active(self) -> int:
        """Connections being handled right now (held wake requests)."""
        with self._count_lock:
            return self._active

    def process_request(self, request: socket.socket, client_address) -> None:
        with self._count_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._count_lock:
            self._active -= 1

    def _refuse(self, request: socket.socket) -> None:
        # Answered from the accept loop without a thread: read what has arrived (so closing does
        # not reset the connection), answer busy, close.
        try:
            request.setblocking(False)
            try:
                request.recv(65536)
            except BlockingIOError:
                pass
            request.sendall(_BUSY)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
        event("wake_refused", reason="connections")

    def server_close(self) -> None:
        super().server_close()
        self.path.unlink(missing_ok=True)

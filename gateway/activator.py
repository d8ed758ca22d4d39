"""The activator: nginx hands it the requests for sleeping facilities; it wakes them and proxies.

Modelled on Knative's activator. For a request of an `asleep` facility (nginx names the slug in
X-Medcell-Slug, replacing anything a client sent under that name) it asks the supervisor to wake
the facility (`POST /wake/<slug>` on its unix socket), holds the request meanwhile, then passes
method, headers and body to the facility's socket and streams the answer back. Concurrent first
requests of one facility share one wake. It never answers 502: the supervisor's refusals become
404 or 503 with Retry-After, as nginx's own answers would be. A client over its wake budget
(wake_budget.py) gets 429 with Retry-After, and the facility stays asleep.

A request's wake deadline counts from when nginx received it (X-Medcell-Received, set by nginx
alone), not from when one of the activator's threads took it up: one that waited behind busy threads
gets the activator's 503 with Retry-After before nginx's timeout would have answered 504.
"""

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus

from medcell_common.interfaces import HELD_HEADER, SLUG_HEADER, WAKE_PATH, WAKE_STATUS, WakeError

from . import errorpages, eventlog
from .settings import facility_socket, settings_from_env, supervisor_socket, wake_deadline
from .targets import SLUG_RE
from .unixhttp import UnixHTTPConnection
from .wake_budget import WakeBudget, client_key

CHUNK = 64 * 1024
SLUG_ENVIRON = "HTTP_" + SLUG_HEADER.upper().replace("-", "_")  # as WSGI names it
# When nginx received the request (its $msec: Unix seconds, milliseconds after the point). nginx
# sets it on every request it hands to the activator, replacing whatever a client sent.
RECEIVED_HEADER = "X-Medcell-Received"
RECEIVED_ENVIRON = "HTTP_" + RECEIVED_HEADER.upper().replace("-", "_")
RECEIVED_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
# nginx and the activator read the same clock, nginx its cached time (a little behind): a time
# further ahead than this is not nginx's.
CLOCK_SKEW = 1.0
RECONNECT_SECONDS = 0.2  # how often to try again while the supervisor's socket is not there
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        SLUG_HEADER.lower(),
        RECEIVED_HEADER.lower(),
        "host",
        "content-length",
        "expect",
    }
)
# What a wake came to, from the supervisor's answer (its statuses: medcell_common.interfaces).
RUNNING, NOT_FOUND, STOPPED, FAILED = "running", "not_found", "stopped", "failed"
_SUPERVISOR_ANSWERS = {
    200: RUNNING,
    WAKE_STATUS[WakeError.NOT_FOUND]: NOT_FOUND,
    WAKE_STATUS[WakeError.FACILITY_STOPPED]: STOPPED,
}


def received_age(value: str | None, now: float, max_age: float) -> float:
    """Seconds since nginx received the request, from its RECEIVED_HEADER and the wall clock
    `now`; 0 (the activator's own clock) for anything but a plain number that is at most
    CLOCK_SKEW ahead and at most `max_age` behind."""
    if not value or not RECEIVED_RE.fullmatch(value):
        return 0.0
    age = now - float(value)
    if age < -CLOCK_SKEW or age > max_age:
        return 0.0
    return max(0.0, age)


class Waker:
    """Asks the supervisor to wake a slug; concurrent callers for one slug share the answer."""

    def __init__(self, socket_path: str, timeout: float):
        self.socket_path = socket_path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: dict[str, Future] = {}

    def waking(self, slug: str) -> bool:
        """Whether a wake of `slug` is under way (joining it costs the host nothing more)."""
        with self._lock:
            return slug in self._pending

    def wake(
        self, slug: str, held_since: float | None = None, deadline: float | None = None
    ) -> str:
        """`held_since`: when (time.monotonic()) nginx received the request that asks; the
        supervisor measures the wake from the first request's. `deadline` (time.monotonic()):
        by when the wake must be done, else FAILED; by default `timeout` from now."""
        now = time.monotonic()
        held_since = now if held_since is None else held_since
        deadline = now + self.timeout if deadline is None else deadline
        with self._lock:
            future = self._pending.get(slug)
            leader = future is None
            if leader:
                future = self._pending[slug] = Future()
        if leader:
            try:
                outcome = self._ask(slug, held_since, deadline)
            except Exception as e:  # unreachable, timed out, garbled: all mean "not now"
                eventlog.event("wake_unanswered", "warning", error=type(e).__name__)
                outcome = FAILED
            with self._lock:
                del self._pending[slug]
            future.set_result(outcome)
            if outcome != RUNNING:
                eventlog.event("wake_refused", "warning", facility=slug, outcome=outcome)
        try:
            # A request that joins a wake waits for it no longer than its own deadline.
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            return FAILED

    def _ask(self, slug: str, held_since: float, deadline: float) -> str:
        while True:
            remaining = deadline - time.monotonic()
            conn = UnixHTTPConnection(self.socket_path, timeout=max(remaining, RECONNECT_SECONDS))
            try:
                conn.connect()
                # Only how long the request has waited: nothing of it is sent.
                held = str(max(0, int((time.monotonic() - held_since) * 1000)))
                conn.request(
                    "POST",
                    f"{WAKE_PATH}{slug}",
                    body=b"",
                    headers={"Content-Length": "0", HELD_HEADER: held},
                )
                response = conn.getresponse()
                response.read()
                return _SUPERVISOR_ANSWERS.get(response.status, FAILED)
            except (FileNotFoundError, ConnectionError):
                # Nobody listens (the supervisor is restarting), or it ended before it answered
                # (killed mid-wake). Waking is idempotent: hold the request and ask again once
                # it is back, within the wake timeout, rather than refuse it at once.
                if time.monotonic() + RECONNECT_SECONDS >= deadline:
                    raise
                time.sleep(RECONNECT_SECONDS)
            finally:
                conn.close()


def _error(
    environ: dict, start_response: Callable, status: int, message: str, retry: int | None
) -> list[bytes]:
    """One of the gateway's own answers: a page for a browser, else the contract's JSON."""
    if errorpages.wants_html(environ.get("HTTP_ACCEPT")):
        body, kind = errorpages.html_page(status).encode(), "text/html; charset=utf-8"
    else:
        body, kind = errorpages.json_body(status, message).encode(), "application/json"
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))), ("Vary", "Accept")]
    if retry is not None:
        headers.append(("Retry-After", str(retry)))
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


def _not_found(environ: dict, start_response: Callable) -> list[bytes]:
    return _error(environ, start_response, 404, "No facility with this name.", None)


def _unavailable(environ: dict, start_response: Callable, retry: int) -> list[bytes]:
    return _error(environ, start_response, 503, errorpages.ANSWERS[503].message, retry)


def _over_budget(environ: dict, start_response: Callable, retry: int) -> list[bytes]:
    message = "This client has woken too many sleeping facilities; try again later."
    return _error(environ, start_response, 429, message, retry)


class Activator:
    """The WSGI app gunicorn serves on the activator socket."""

    def __init__(self, settings: Mapping, waker: Waker | None = None):
        self.settings = settings
        self.deadline = wake_deadline(settings)
        self.waker = waker or Waker(supervisor_socket(settings), self.deadline)
        self.budget = WakeBudget(settings["WAKE_BUDGET"], settings["WAKE_BUDGET_WINDOW"])

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        now = time.monotonic()
        age = received_age(
            environ.get(RECEIVED_ENVIRON), time.time(), self.settings["READ_TIMEOUT"]
        )
        held_since = now - age
        deadline = held_since + self.deadline
        slug = environ.get(SLUG_ENVIRON, "")
        if not SLUG_RE.fullmatch(slug):
            return _not_found(environ, start_response)
        if deadline <= now:
            # It waited for a thread until nginx's timeout is near: 503 now rather than its 504.
            eventlog.event("wake_deadline_passed", "warning", facility=slug)
            return _unavailable(environ, start_response, 5)
        if not self.waker.waking(slug):
            # nginx sets X-Forwarded-For to the client's address, replacing whatever it sent.
            client = client_key(environ.get("HTTP_X_FORWARDED_FOR", ""))
            wait = self.budget.charge(client, slug)
            if wait is not None:
                eventlog.event("wake_over_budget", "warning", facility=slug)
                return _over_budget(environ, start_response, int(wait + 0.999))
        outcome = self.waker.wake(slug, held_since, deadline)
        if outcome == NOT_FOUND:
            return _not_found(environ, start_response)
        if outcome == STOPPED:
            return _unavailable(environ, start_response, 30)
        if outcome != RUNNING:
            return _unavailable(environ, start_response, 5)
        return self._proxy(slug, environ, start_response)

    def _proxy(self, slug: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        conn = UnixHTTPConnection(
            facility_socket(self.settings, slug), timeout=self.settings["READ_TIMEOUT"]
        )
        method = environ["REQUEST_METHOD"]
        target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", "facility")
            for name, value in _request_headers(environ):
                conn.putheader(name, value)
            length = environ.get("CONTENT_LENGTH") or ""
            body = environ["wsgi.input"]
            if length.isdigit():
                conn.putheader("Content-Length", length)
                conn.endheaders()
                _send_exactly(conn, body, int(length))
            elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                while chunk := body.read(CHUNK):
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
            else:
                conn.endheaders()
            response = conn.getresponse()
        except OSError as e:
            conn.close()
            eventlog.event("woken_facility_unreachable", "warning", error=type(e).__name__)
            return _unavailable(environ, start_response, 5)
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        length = response.getheader("Content-Length")
        if length is not None and method != "HEAD":
            headers.append(("Content-Length", length))
        start_response(f"{response.status} {response.reason}", headers)
        return _Body(response, conn)


def _request_headers(environ: dict) -> Iterator[tuple[str, str]]:
    if environ.get("CONTENT_TYPE"):
        yield "Content-Type", environ["CONTENT_TYPE"]
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            if name not in HOP_BY_HOP:
                yield name.title(), value


def _send_exactly(conn: UnixHTTPConnection, stream, length: int) -> None:
    missing = length
    while missing:
        chunk = stream.read(min(CHUNK, missing))
        if not chunk:
            raise ConnectionError("request body ended early")
        conn.send(chunk)
        missing -= len(chunk)


class _Body:
    """The facility's answer, read in chunks as the client takes it; closes the connection."""

    def __init__(self, response, conn: UnixHTTPConnection):
        self._response = response
        self._conn = conn

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._response.read1(CHUNK):
            yield chunk

    def close(self) -> None:
        self._response.close()
        self._conn.close()


def create_app(config: Mapping | None = None) -> Activator:
    """The activator app; settings come from the environment, then from `config`."""
    import os

    eventlog.configure()
    settings = settings_from_env(os.environ)
    settings.update(config or {})
    return Activator(settings)

"""The facility's server: one process with a few threads (waitress), as it runs in its container.

`python -m services` serves the app on MEDCELL_BIND (`unix:/path` or `host:port`; on a host, several
separated by spaces). The image, the tests and the benchmarks all start a facility this way.
One process instead of gunicorn's arbiter and worker saves ~10 MiB per awake facility (figures in
docs/figures.md, "The facility's server"). What gunicorn's config gave, kept here:

- the unix socket made 0666: who may connect is decided by its directory's mode (0711);
- SIGTERM drains: no new connections, idle keep-alive connections closed, requests in flight
  (a download included) finish within GRACE_SECONDS, then the deletion job stops and it exits;
- a body limit (the app's MAX_CONTENT_LENGTH; nginx in front has one too);
- a timeout (MEDCELL_REQUEST_TIMEOUT, 60 s): a connection on which no byte moves for that long is
  closed, idle or in the middle of a request: a client that stops sending a body or reading a
  response, or a request stuck in the app. Its request thread is freed as soon as it next reads
  the body or writes (a thread stuck without doing either cannot be taken back in Python; the
  log says how many are, as gunicorn's threaded worker, whose `timeout` only watched its main
  loop, would not have);
- JSON lines on stderr and no request line: no log line names a path (patient links hold
  their secret there), waitress's own errors are cut down to what happened and its type.

Request bodies are streamed to the app as they arrive (BodyPipe): a request goes to a request
thread as soon as its headers are read, and a connection holds at most BodyPipe.WINDOW of a body
that the app has not read yet; nothing is spooled to a file (the container's /tmp is a tmpfs:
memory). A body still arriving counts as a request in flight (`/_medcell/status`), so the
facility is not put to sleep under an upload, and a draining server waits for it; a body cut off
half-way makes the app's read fail, so nothing of it is kept. Responses are streamed: the app
waits while OUTBUF_HIGH_WATERMARK bytes wait for the client, and a response never spills into a
file.
"""

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from waitress import utilities as waitress_errors
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestEntityTooLarge

from medcell_common.logs import JsonFormatter
from services.facility import create_app, start_jobs
from services.facility.core.activity import Activity
from services.facility.core.config import Config
from services.facility.core.retention import Sweeper
from services.facility.core.serving import ServingLock

THREADS = 4
GRACE_SECONDS = 20
REQUEST_TIMEOUT_SECONDS = 60.0
OUTBUF_HIGH_WATERMARK = 1024 * 1024
LOOP_SECONDS = 1.0  # as waitress's own loop: SIGTERM is noticed within a second
FIRST_SWEEP_NOTICE = 10.0  # a first sweep that takes longer than this is logged

log = logging.getLogger("medcell.facility")

# Levels: the facility's own events from INFO, everything else (waitress's) from WARNING.
LOG_LEVELS = {"": logging.WARNING, "medcell": logging.INFO, "waitress": logging.WARNING}


def configure_logging() -> None:
    """JSON lines on stderr, waitress's errors without their request. Set up by hand rather than
    with `logging.config`, which with `logging.handlers` costs each wake ~3 ms of CPU."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(NoRequestData())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    for name, level in LOG_LEVELS.items():
        logging.getLogger(name).setLevel(level)


class NoRequestData(logging.Filter):
    """waitress names the path of a request that failed: keep only that one failed, and how."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("waitress") and record.levelno >= logging.ERROR:
            error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
            record.msg = f"error handling request ({error or 'unknown'})"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


class BodyPipe:
    """A request body handed to the app while it arrives, never held whole nor written to a file.

    waitress's receivers append what the connection reads (in the server's loop); the app's
    thread reads it (`wsgi.input`). The loop stops reading the connection while WINDOW bytes
    wait for the app, so a connection holds at most that much of a body. A body cut off, or
    refused half-way by waitress, makes the app's next read raise; the app's response then goes
    nowhere or is its 400/413. Once the app is done with the request, the rest of its body is
    read and dropped, so the connection can go on to its next request.
    """

    WINDOW = 256 * 1024

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.done = False
        self.dispatched = False
        self.error: Exception | None = None
        self.dropped = False  # the app is done with it
        self.wake: Callable[[], None] = lambda: None  # the server loop, to read again
        self.lock = threading.Condition()

    # What waitress's receivers and its request call.
    def append(self, data: bytes) -> None:
        with self.lock:
            if not self.dropped:
                self.chunks.append(bytes(data))
                self.size += len(data)
                self.lock.notify_all()

    def __len__(self) -> int:
        return self.size

    def getfile(self) -> "BodyPipe":
        return self

    def close(self) -> None:
        with self.lock:
            self.dropped = True
            self.chunks.clear()
            self.size = 0
            self.lock.notify_all()
        self.wake()

    # The loop's side.
    def finish(self, error: Exception | None = None) -> None:
        with self.lock:
            self.done = True
            self.error = error
            self.lock.notify_all()

    def full(self) -> bool:
        return self.size >= self.WINDOW

    # The app's side: a file opened for reading.
    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # all of it, as it arrives
            return b"".join(iter(lambda: self.read(self.WINDOW), b""))
        if size == 0:
            return b""
        with self.lock:
            while not self.chunks and not self.done and not self.dropped:
                self.lock.wait()
            if not self.chunks:
                if self.error is not None:
                    raise self.error
                return b""
            was_full = self.full()
            out = []
            while self.chunks and size > 0:
                chunk = self.chunks.popleft()
                if len(chunk) > size:
                    chunk, rest = chunk[:size], chunk[size:]
                    self.chunks.appendleft(rest)
                out.append(chunk)
                size -= len(chunk)
                self.size -= len(chunk)
        if was_full and not self.full():
            self.wake()
        return b"".join(out)

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            if not byte:
                break
            line += byte
            if byte == b"\n":
                break
        return bytes(line)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class Parser(HTTPRequestParser):
    """waitress's request parser, its body going into a BodyPipe instead of a spooling buffer."""

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.body_rcv is not None:
            self.body_rcv.buf = BodyPipe()


def _pipe(request) -> BodyPipe | None:
    receiver = request.body_rcv if request is not None else None
    return receiver.buf if receiver is not None else None


class Channel(HTTPChannel):
    """waitress's connection with bodies streamed to the app (BodyPipe): a request goes to a
    request thread as soon as its headers are read. A body still arriving counts as in flight."""

    parser_class = Parser
    activity: Activity
    receiving = False

    def received(self, data: bytes) -> bool:
        try:
            return self._received(data)
        finally:
            request = self.request  # the one being read, until it is complete
            self._receiving(
                request is not None and request.headers_finished and not request.completed
            )

    def _received(self, data: bytes) -> bool:
        """HTTPChannel.received, but a request with a body is handed on before the body is in."""
        if not data:
            return False
        with self.requests_lock:
            if self.will_close or self.close_when_flushed:
                return False
            while data:
                if self.request is None:
                    self.request = self.parser_class(self.adj)
                request = self.request
                n = request.received(data)
                if (
                    request.expect_continue
                    and request.headers_finished
                    and not self.requests
                    and not self.sent_continue
                ):
                    self.send_continue()
                pipe = _pipe(request)
                if pipe is not None and not pipe.dispatched and request.error is None:
                    pipe.dispatched = True
                    pipe.wake = self.server.pull_trigger
                    self._queue(request)
                if request.completed:
                    self.sent_continue = False
                    if pipe is not None and pipe.dispatched:
                        pipe.finish(_refusal(request.error) if request.error else None)
                    elif not request.empty:
                        self._queue(request)
                    self.request = None
                if n >= len(data):
                    break
                data = data[n:]
        return True

    def _queue(self, request) -> None:
        self.requests.append(request)
        if len(self.requests) == 1:  # else service() goes on to it after the one before
            self.server.add_task(self)

    def readable(self) -> bool:
        pipe = _pipe(self.request)
        if pipe is not None and pipe.dispatched:  # reading a body the app is reading too
            return not (self.will_close or self.close_when_flushed or pipe.full())
        return super().readable()

    def del_channel(self, map=None) -> None:
        pipe = _pipe(self.request)
        if pipe is not None and not pipe.done:
            pipe.finish(ClientDisconnected())  # cut off: the app must not take it as whole
        self._receiving(False)  # closed, a body cut off or not
        super().del_channel(map)

    def _receiving(self, now: bool) -> None:
        if now != self.receiving:
            self.receiving = now
            (self.activity.begin if now else self.activity.end)(False)


def _refusal(error) -> Exception:
    """What the app's read raises when waitress refused a body half-way (too large, malformed)."""
    if isinstance(error, waitress_errors.RequestEntityTooLarge):
        return RequestEntityTooLarge()
    return BadRequest()


def bind_options(bind: str) -> dict:
    """waitress's options for one address: `unix:/run/medcell/app.sock` or `127.0.0.1:8000`."""
    if bind.startswith("unix:"):
        return {"unix_socket": bind[len("unix:") :], "unix_socket_perms": "666"}
    host, _, port = bind.rpartition(":")
    return {"host": host.strip("[]") or "127.0.0.1", "port": int(port)}


def serve(env: dict[str, str] | None = None) -> None:
    env = dict(os.environ if env is None else env)
    configure_logging()
    binds = [bind_options(b) for b in env.get("MEDCELL_BIND", "127.0.0.1:8000").split()]
    sockets = [b["unix_socket"] for b in binds if "unix_socket" in b]
    stopping: list[int] = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    config = Config.from_env(env)
    # Before the socket, the database or the deletion job: another process on this data volume
    # (an old container still draining) serves until it ends, and this one waits for it.
    serving = ServingLock(config.data_dir)
    if not serving.acquire(lambda: bool(stopping)):
        return
    for path in sockets:
        Path(path).unlink(missing_ok=True)  # left by a killed predecessor
    app = serving_app(config)
    sweeper = app.extensions["medcell"].sweeper
    if sweeper is not None and not _first_sweep(sweeper, stopping):
        sweeper.stop()
        serving.release()
        return
    # One listener per address, all in one loop and one pool of request threads.
    map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(int(env.get("MEDCELL_THREADS", THREADS)))
    timeout = float(env.get("MEDCELL_REQUEST_TIMEOUT", REQUEST_TIMEOUT_SECONDS))
    channel = type("Channel", (Channel,), {"activity": app.extensions["medcell"].activity})
    servers = []
    for options in binds:
        server = create_server(
            app,
            map=map,
            _dispatcher=dispatcher,
            **options,
            # A little above the app's own limit: a declared length over it gets the app's JSON
            # 413; this bounds what waitress reads of a body without a length (chunked).
            max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024,
            channel_timeout=timeout,
            outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
            outbuf_overflow=4 * OUTBUF_HIGH_WATERMARK,
            ident="medcell",
            expose_tracebacks=False,
            # The gateway's X-Forwarded-* reach the app as they did under gunicorn: the app's
            # ProxyFix trusts exactly one hop, and /_medcell/status refuses anything forwarded.
            clear_untrusted_proxy_headers=False,
        )
        server.channel_class = channel
        servers.append(server)
    start_jobs(app)
    watchdog = Watchdog(servers, timeout)
    while not stopping:
        wasyncore.loop(timeout=LOOP_SECONDS, map=map, count=1)
        watchdog.check()
    _drain(servers, map, sockets)
    dispatcher.shutdown(timeout=1)
    if sweeper is not None:
        sweeper.stop()
    serving.release()
    log.info("stopped")


def serving_app(config: Config):
    """The app, made with the cyclic garbage collector off, which `python -m services` switches
    off before the first import (services/__main__.py).

    A start makes some 60,000 objects (modules, classes, routes) that live as long as the
    process; while they are made, the collector would walk them again and again (~10 ms of a
    wake's CPU, docs/figures.md). Once made they are moved out of its sight (`gc.freeze`), with
    the few hundred objects of garbage the start left (tens of KiB), and it is switched on again
    for whatever serving makes.
    """
    app = create_app({"MEDCELL": config})
    gc.freeze()
    gc.enable()
    return app


def _first_sweep(sweeper: Sweeper, stopping: list[int]) -> bool:
    """Wait for the deletion job's first pass before the socket exists (False: told to stop).

    Whatever expired while the facility slept, or while its node was cut off, is deleted before
    the first request can be answered: until then there is nothing to connect to.
    """
    started = time.monotonic()
    told = False
    while not sweeper.wait_ready(LOOP_SECONDS):
        if stopping:
            return False
        if not told and time.monotonic() - started > FIRST_SWEEP_NOTICE:
            log.warning("first_sweep_wait")  # a failing sweep retries; nothing is served meanwhile
            told = True
    if told:
        log.warning(
            "first_sweep_done", extra={"fields": {"seconds": round(time.monotonic() - started)}}
        )
    return True


class Watchdog:
    """Closes connections whose request has moved no byte for `timeout` seconds (waitress's own
    maintenance closes only idle ones), once a second at most, from the server's loop."""

    def __init__(self, servers: list, timeout: float):
        self.servers, self.timeout = servers, timeout
        self.next = 0.0
        self.cut: dict[int, object] = {}  # channels cut whose request thread has not come back
        self.reported = 0

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + 1
        wall = time.time()  # waitress keeps last_activity in wall-clock time
        for server in self.servers:
            for channel in list(server.active_channels.values()):
                idle = wall - channel.last_activity
                if channel.requests and idle > self.timeout and not channel.will_close:
                    channel.will_close = True  # the loop closes it; its reads and writes fail
                    self.cut[id(channel)] = channel
                    log.warning("request timed out", extra={"fields": {"seconds": round(idle)}})
        self.cut = {k: c for k, c in self.cut.items() if c.requests}
        if len(self.cut) != self.reported:  # said when it changes, not every second
            self.reported = len(self.cut)
            if self.cut:
                log.warning("request threads stuck", extra={"fields": {"threads": len(self.cut)}})


def _drain(servers: list, map: dict, sockets: list[str]) -> None:
    """No new connections; finish what is in flight (within GRACE_SECONDS), then stop."""
    for server in servers:
        server.accepting = False
        server.del_channel()
        server.socket.close()
    for path in sockets:
        Path(path).unlink(missing_ok=True)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        busy = False
        channels = [c for server in servers for c in list(server.active_channels.values())]
        for channel in channels:
            if channel.requests or channel.total_outbufs_len or channel.receiving:
                busy = True
            elif channel.request is None:
                channel.will_close = True  # idle keep-alive: closed by the loop
        if not busy and not channels:
            break
        wasyncore.loop(timeout=0.05, map=map, count=1)


def main() -> None:
    try:
        serve()
    except Exception as e:  # one JSON line, the type only: its text may quote data
        log.critical("could not serve", extra={"fields": {"error": type(e).__name__}})
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The facility's server: one process with a few threads (waitress), as it runs in its container.

`python -m services` serves the app on MEDCELL_BIND (`unix:/path` or `host:port`; on a host, several
separated by spaces). The image, the tests and the benchmarks all start a facility this way.
One process instead of gunicorn's arbiter and worker saves ~10 MiB per awake facility (figures in
docs/figures.md, "The facility's server"). What gunicorn's config gave, kept here:

- the unix socket made 0666: who may connect is decided by its directory's mode (0711);
- SIGTERM drains: no new connections, idle keep-alive connections closed, requests in flight
  (a download included) finish within GRACE_SECONDS, then the deletion job stops and it exits;
- a body limit (the app's MAX_CONTENT_LENGTH; nginx in front has one too) and a timeout for a
  client that stops sending or reading (CHANNEL_TIMEOUT_SECONDS); a request hung inside the app
  is cut off by the gateway's read timeout, as it was under gunicorn's threaded worker, whose
  `timeout` only watched the worker's main loop, never a request thread;
- JSON lines on stderr and no request line: no log line names a path (patient links hold
  their secret there), waitress's own errors are cut down to what happened and its type.

Request bodies: waitress reads a whole request before the app sees it, up to INBUF_OVERFLOW in
memory and beyond that in an unlinked temporary file in TMPDIR (the container's /tmp, a tmpfs:
memory, never disk), freed when the request ends. The app keeps uploads in memory anyway
(context.MemoryRequest), so an upload briefly costs twice its size; both are bounded by the body
limit. A body still arriving counts as a request in flight (`/_medcell/status`), so the facility
is not put to sleep under an upload, and a draining server waits for it. A body cut off half-way
never reaches the app. Responses are streamed: the app waits while OUTBUF_HIGH_WATERMARK bytes
wait for the client, and a response never spills into a file.
"""

import logging
import logging.config
import os
import signal
import sys
import time
from pathlib import Path

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from services.facility import create_app, start_jobs
from services.facility.core.activity import Activity

THREADS = 4
GRACE_SECONDS = 20
CHANNEL_TIMEOUT_SECONDS = 60
INBUF_OVERFLOW = 512 * 1024
OUTBUF_HIGH_WATERMARK = 1024 * 1024
LOOP_SECONDS = 1.0  # as waitress's own loop: SIGTERM is noticed within a second

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "medcell_common.logs.JsonFormatter"}},
    "filters": {"no_request_data": {"()": "services.facility.server.NoRequestData"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["no_request_data"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"medcell": {"level": "INFO"}, "waitress": {"level": "WARNING"}},
}


class NoRequestData(logging.Filter):
    """waitress names the path of a request that failed: keep only that one failed, and how."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("waitress") and record.levelno >= logging.ERROR:
            error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
            record.msg = f"error handling request ({error or 'unknown'})"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


class Channel(HTTPChannel):
    """waitress's connection, which also counts a request body still arriving as in flight."""

    activity: Activity
    receiving = False

    def received(self, data: bytes) -> bool:
        try:
            return super().received(data)
        finally:
            request = self.request  # the one being read, until it is complete
            self._receiving(
                request is not None and request.headers_finished and not request.completed
            )

    def del_channel(self, map=None) -> None:
        self._receiving(False)  # closed, a body cut off or not
        super().del_channel(map)

    def _receiving(self, now: bool) -> None:
        if now != self.receiving:
            self.receiving = now
            (self.activity.begin if now else self.activity.end)(False)


def bind_options(bind: str) -> dict:
    """waitress's options for one address: `unix:/run/medcell/app.sock` or `127.0.0.1:8000`."""
    if bind.startswith("unix:"):
        return {"unix_socket": bind[len("unix:") :], "unix_socket_perms": "666"}
    host, _, port = bind.rpartition(":")
    return {"host": host.strip("[]") or "127.0.0.1", "port": int(port)}


def serve(env: dict[str, str] | None = None) -> None:
    env = dict(os.environ if env is None else env)
    logging.config.dictConfig(LOGGING)
    binds = [bind_options(b) for b in env.get("MEDCELL_BIND", "127.0.0.1:8000").split()]
    sockets = [b["unix_socket"] for b in binds if "unix_socket" in b]
    for path in sockets:
        Path(path).unlink(missing_ok=True)  # left by a killed predecessor
    app = create_app(env=env)
    # One listener per address, all in one loop and one pool of request threads.
    map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(int(env.get("MEDCELL_THREADS", THREADS)))
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
            channel_timeout=CHANNEL_TIMEOUT_SECONDS,
            inbuf_overflow=INBUF_OVERFLOW,
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
    stopping: list[int] = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        wasyncore.loop(timeout=LOOP_SECONDS, map=map, count=1)
    _drain(servers, map, sockets)
    dispatcher.shutdown(timeout=1)
    sweeper = app.extensions["medcell"].sweeper
    if sweeper is not None:
        sweeper.stop()
    logging.getLogger("medcell.facility").info("stopped")


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
        logging.getLogger("medcell.facility").critical(
            "could not serve", extra={"fields": {"error": type(e).__name__}}
        )
        sys.exit(1)


if __name__ == "__main__":
    main()

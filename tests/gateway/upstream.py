"""Real HTTP/1.1 servers on unix sockets standing in for facilities and the supervisor.

A facility stand-in echoes what reached it (method, path, headers, body size and digest) and has
a few paths that misbehave on purpose: slow answers, big streamed bodies, hop-by-hop headers,
cacheable statics, a response broken off half-way, cookies tossed at its neighbours.
"""

import hashlib
import json
import os
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

from medcell_common.interfaces import HELD_HEADER

CHUNK = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def address_string(self) -> str:
        return "unix"


class UpstreamHandler(_Handler):
    def _read_body(self) -> tuple[int, str]:
        """Read the whole request body without keeping it, returning its size and SHA-256."""
        digest, size = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                length = int(self.rfile.readline().split(b";")[0], 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                remaining = length
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    digest.update(data)
                    size += len(data)
                    self.server.received += len(data)
                    remaining -= len(data)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    break
                digest.update(data)
                size += len(data)
                self.server.received += len(data)
                remaining -= len(data)
        return size, digest.hexdigest()

    def _handle(self) -> None:
        size, sha = self._read_body()
        self.server.seen.append((self.command, self.path))
        path = self.path.split("?", 1)[0]
        if path == "/slow":
            time.sleep(2)
        if path.startswith("/big/"):
            return self._big(int(path.rsplit("/", 1)[1]))
        if path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.close_connection = True
            return
        extra = EXTRA_HEADERS.get(path, [])
        if path.startswith("/toss/"):
            extra = tossed_cookies(path.removeprefix("/toss/"))
        status = {"/redirect": 302, "/not-allowed": 405}.get(path, 200)
        body = json.dumps(
            {
                "upstream": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_size": size,
                "body_sha256": sha,
            }
        ).encode()
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _big(self, mib: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(mib * 1024 * 1024))
        self.end_headers()
        block = b"\x5a" * CHUNK
        for _ in range(mib * 16):
            self.wfile.write(block)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


EXTRA_HEADERS = {
    "/hop": [
        ("Connection", "X-Hop-Secret"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authenticate", "Basic"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "h2c"),
        ("Server", "leaky/1.0"),
        ("Set-Cookie", "a=1; Secure; HttpOnly"),
        ("Set-Cookie", "b=2; Secure; HttpOnly"),
        ("X-End-To-End", "kept"),
    ],
    "/static/app.css": [("Cache-Control", "public, max-age=3600")],
    "/api/v1/cacheable": [("Cache-Control", "public, max-age=3600")],
    "/csp": [("Content-Security-Policy", "default-src 'none'; img-src 'self'")],
    "/loose-csp": [
        ("Content-Security-Policy", "default-src *; script-src * 'unsafe-inline' 'unsafe-eval'")
    ],
    # A compromised facility tossing cookies at its neighbours (the parent domain) and at itself.
    "/domain-cookies": [
        ("Set-Cookie", "toss=1; Domain=localhost; Path=/"),
        ("Set-Cookie", "toss2=1; domain=.LOCALHOST; Path=/; Secure"),
        ("Set-Cookie", "mine=1; Path=/; Domain=a.localhost"),
        ("Set-Cookie", "__Host-own=1; Path=/; Secure; HttpOnly; SameSite=Strict"),
    ],
    "/redirect": [("Location", "http://facility/login?next=1")],
    "/not-allowed": [("Allow", "GET, POST")],  # the facility's own 405
}


class OneRequestHandler(UpstreamHandler):
    """One request per connection, as a server that frees its thread after each answer."""

    def handle(self) -> None:
        self.handle_one_request()

    def end_headers(self) -> None:
        self.send_header("Connection", "close")
        super().end_headers()


def tossed_cookies(domain: str) -> list[tuple[str, str]]:
    """A compromised facility setting cookies for its parent `domain`, so for every facility
    under it (session fixation, shadowing), next to a host-only cookie of its own."""
    return [
        ("Set-Cookie", f"toss=1; Domain={domain}; Path=/; Secure"),
        ("Set-Cookie", f"__Host-mc_staff=tossed; Domain={domain}; Path=/; Secure"),
        ("Set-Cookie", "__Host-own=1; Path=/; Secure; HttpOnly; SameSite=Lax"),
    ]


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    connections = 0  # accepted so far: tells whether the gateway reuses its connections
    received = 0  # request body bytes read so far, all requests together

    def process_request(self, request, client_address) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class _PooledUnixServer(_UnixServer):
    """A fixed number of threads, as a facility's server has: further connections wait."""

    pool: ThreadPoolExecutor

    def process_request(self, request, client_address) -> None:
        self.connections += 1
        self.pool.submit(self.process_request_thread, request, client_address)


class UnixServer:
    """A running HTTP server on a unix socket at `path` (its directory is created)."""

    handler = UpstreamHandler
    server_class = _UnixServer

    def __init__(self, name: str, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        self.path = path
        self.server = self.server_class(path, self.handler)
        os.chmod(path, 0o666)
        self.server.name = name
        self.server.seen = []
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self.server.seen

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def received(self) -> int:
        return self.server.received

    def start(self) -> "UnixServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class PooledUnixServer(UnixServer):
    """A facility stand-in with `threads` request threads, like the facility's own server."""

    handler = OneRequestHandler
    server_class = _PooledUnixServer

    def __init__(self, name: str, path: str, threads: int):
        super().__init__(name, path)
        self.server.pool = ThreadPoolExecutor(threads)

    def stop(self) -> None:
        super().stop()
        self.server.pool.shutdown(wait=False, cancel_futures=True)


class SupervisorHandler(_Handler):
    """The supervisor's wake API as the design describes it, with canned answers per slug."""

    def do_POST(self) -> None:
        slug = self.path.removeprefix("/wake/")
        self.server.seen.append(("POST", self.path))
        self.server.held.append(self.headers.get(HELD_HEADER))
        time.sleep(self.server.delay)
        if self.server.hang_ups:
            # As a supervisor killed mid-wake: the connection ends without an answer.
            self.server.hang_ups -= 1
            self.close_connection = True
            return
        status, body, headers = self.server.answers.get(
            slug, (404, {"error": {"code": "not_found", "message": "no such facility"}}, {})
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


class FakeSupervisor(UnixServer):
    handler = SupervisorHandler

    def __init__(self, path: str, delay: float = 0.3):
        super().__init__("supervisor", path)
        self.server.delay = delay
        self.server.answers = {}
        self.server.hang_ups = 0  # requests to end without an answer
        self.server.held = []  # each wake request's HELD_HEADER

    def answer(self, slug: str, status: int, code: str | None = None) -> None:
        if status == 200:
            body, headers = {"slug": slug, "state": "running"}, {}
        else:
            body = {"error": {"code": code or "wake_failed", "message": "no"}}
            headers = {"Retry-After": "5"} if status == 503 else {}
        self.server.answers[slug] = (status, body, headers)

"""A real HTTP/1.1 server standing in for a facility container in the gateway's unit tests.

It echoes what reached it (method, path, headers, body size and digest) and has a few paths that
misbehave on purpose: slow answers, big streamed bodies, hop-by-hop headers, cacheable statics.
"""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately; don't stall keep-alive

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

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
                remaining -= len(data)
        return size, digest.hexdigest()

    def _handle(self) -> None:
        size, sha = self._read_body()
        self.server.seen.append((self.command, self.path))
        self.server.peers.append(self.client_address[1])
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
        status = 302 if path == "/redirect" else 200
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
            value = value.replace("{origin}", self.server.origin)
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
        ("X-Hop-Secret", "only-for-this-hop"),
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
    "/redirect": [("Location", "{origin}/login?next=1")],
}


class Upstream:
    """A running upstream server on 127.0.0.1 with a random port."""

    def __init__(self, name: str):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), UpstreamHandler)
        self.server.daemon_threads = True
        self.server.name = name
        self.server.seen = []
        self.server.peers = []  # client port of every request: one port per TCP connection
        self.port = self.server.server_address[1]
        self.origin = self.server.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self.server.seen

    @property
    def peers(self) -> list[int]:
        return self.server.peers

    def start(self) -> "Upstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

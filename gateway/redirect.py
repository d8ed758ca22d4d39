"""The plain-HTTP listener: it only ever redirects to HTTPS, and logs nothing about the request."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.datastructures import Headers

from .headers import apply_security_headers
from .paths import valid_host

_TARGET = re.compile(r"/[\x21-\x7e]*")


class RedirectHandler(BaseHTTPRequestHandler):
    """Answer any request with 301 (GET/HEAD) or 308 (others) to the same target over HTTPS."""

    server_version = "medcell-gateway"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that sends nothing must not hold a thread
    https_port = 443

    def _redirect(self) -> None:
        host = self.headers.get("Host", "")
        if not valid_host(host):
            self._answer(400, None)
            return
        name = host[: host.index("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
        port = "" if self.https_port == 443 else f":{self.https_port}"
        target = self.path if _TARGET.fullmatch(self.path) else "/"
        status = 301 if self.command in ("GET", "HEAD") else 308
        self._answer(status, f"https://{name}{port}{target}")

    def _answer(self, status: int, location: str | None) -> None:
        headers = Headers()
        apply_security_headers(headers)
        if location:
            headers["Location"] = location
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        # The body of a request is never read, so the connection cannot be reused.
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _redirect

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silenced: the default log line holds the request path, which may hold a patient token."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests get the same bare answer, never an HTML page echoing their content.
        self._answer(code, None)


def make_server(bind: str, https_port: int) -> ThreadingHTTPServer:
    """A threaded redirect server bound to `bind` ("host:port"), not yet serving."""
    host, _, port = bind.rpartition(":")
    handler = type("Handler", (RedirectHandler,), {"https_port": https_port})
    server = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), handler)
    server.daemon_threads = True
    return server


def start(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http-redirect", daemon=True)
    thread.start()
    return thread

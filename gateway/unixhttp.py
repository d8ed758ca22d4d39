"""HTTP/1.1 over unix sockets with the standard library: the activator's only client."""

import http.client
import socket
import time

BUSY_RETRY_SECONDS = 0.01


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix stream socket at `path`."""

    def __init__(self, path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        # A unix socket whose listen queue is full refuses at once with EAGAIN instead of making
        # the caller wait (as TCP would): a facility just woken by a burst of first requests
        # meets that. Try again shortly, within the timeout.
        deadline = time.monotonic() + (self.timeout if self.timeout is not None else 10.0)
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except BlockingIOError:
                sock.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(BUSY_RETRY_SECONDS)
                continue
            except OSError:
                sock.close()
                raise
            self.sock = sock
            return

"""HTTP over a unix socket, as the gateway's nginx and the supervisor speak to a facility."""

import http.client
import socket
from pathlib import Path


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str | Path, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def unix_get(
    path: str | Path, target: str, headers: dict | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """GET `target` from the server on the unix socket `path`: (status, body).

    Raises OSError (say FileNotFoundError, ConnectionRefusedError) while nothing listens there.
    """
    conn = UnixHTTPConnection(path, timeout=timeout)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()

"""A deliberately dumb HTTPS client: sends the request target byte for byte, as attackers do."""

import socket
import ssl

import requests

from devsupport import localhost


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def raw_request(
    port: int,
    target: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Send one request over a fresh TLS connection (SNI and Host: `host`, say a facility's
    `<slug>.localhost`, reached on loopback); return status, headers and body."""
    headers = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        sni = None if host.replace(".", "").isdigit() else host
        with client_context().wrap_socket(raw, server_hostname=sni) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except ssl.SSLError:
                pass  # nginx may close without close_notify after an error
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


class SlowBody:
    """An attacker's request: headers at once, then the body one byte at a time (`send_byte`).

    It goes to `host` (SNI and Host, a facility's `<slug>.localhost`) on loopback, from the
    loopback address `source`: another client, to the gateway."""

    def __init__(
        self, port: int, target: str, length: int, source: str = "127.0.0.1", *, host: str
    ):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        self.sock = client_context().wrap_socket(raw, server_hostname=host)
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
        self.sock.sendall(head.encode("latin-1") + b"x")
        self.closed = False

    def send_byte(self) -> None:
        if self.closed:
            return
        try:
            self.sock.sendall(b"x")
        except OSError:
            self.closed = True

    def answer(self, within: float) -> bytes | None:
        """The gateway's answer head (b"" if it closed without one); None if it said nothing."""
        self.sock.settimeout(within)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                data += chunk
        except TimeoutError:
            return data or None
        except (ssl.SSLError, ConnectionError):
            self.closed = True  # closed without close_notify, or reset: closed all the same
        return data

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class _SourceAdapter(localhost.LocalhostAdapter):
    """Reaches `*.localhost` on 127.0.0.1 (as `devsupport.localhost`) from the address `source`."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def client_at(source: str) -> requests.Session:
    """A session connecting from another loopback address: another client, to the gateway. It
    reaches a facility's own origin `https://<slug>.localhost:<port>/` (the environment's CA
    bundle checks the certificate)."""
    session = requests.Session()
    adapter = _SourceAdapter(source)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def h2_request(
    port: int, target: str, method: str, headers: dict[str, str], *, host: str
) -> tuple[int, dict[str, str], bytes]:
    """One request over HTTP/2, as browsers speak to the gateway (headers only: a body the
    headers announce is never sent); return status, headers and body."""
    import h2.config
    import h2.connection
    import h2.events

    context = client_context()
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as sock:
            assert sock.selected_alpn_protocol() == "h2"
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            request = [
                (":method", method),
                (":scheme", "https"),
                (":authority", f"{host}:{port}"),
                (":path", target),
                *((k.lower(), v) for k, v in headers.items()),
            ]
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, request, end_stream=False)
            sock.sendall(conn.data_to_send())
            status, answer, body = 0, {}, b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                        for name, value in event.headers:
                            name, value = name.decode(), value.decode()
                            if name == ":status":
                                status = int(value)
                            else:
                                answer[name] = value
                    elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        if event.stream_id == stream:
                            sock.sendall(conn.data_to_send())
                            return status, answer, body
                sock.sendall(conn.data_to_send())
    return status, answer, body

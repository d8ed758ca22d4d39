"""A deliberately dumb HTTPS client: sends the request target byte for byte, as attackers do."""

import socket
import ssl


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

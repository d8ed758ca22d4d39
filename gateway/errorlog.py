"""nginx's error log, minus request data: received as syslog datagrams, re-emitted as events.

nginx's error lines quote request lines, URIs (patient tokens), client addresses and upstream
socket paths. The receiver keeps only the syslog severity and a content-free event name chosen
from a fixed list by what the line is about; the line itself is dropped.
"""

import logging

from . import eventlog
from .datagrams import DatagramReceiver

# (what the line says, the event logged instead); first match wins.
KINDS = (
    ("upstream timed out", "upstream_timeout"),
    ("upstream prematurely closed", "upstream_aborted"),
    ("connect() to unix:", "upstream_unreachable"),
    ("no live upstreams", "upstream_unreachable"),
    ("upstream sent", "upstream_invalid_response"),
    ("intended to send too large body", "body_too_large"),
    ("limiting requests", "rate_limited"),
    ("limiting connections", "connection_limited"),
    ("client sent", "invalid_request"),
    ("client timed out", "client_timeout"),
    ("SSL_do_handshake", "tls_handshake_failed"),
    ("worker_connections are not enough", "worker_connections_exhausted"),
    ("reconfiguring", "nginx_reloading"),
)
# syslog severities (RFC 5424) to logging levels.
_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL, 3: logging.ERROR}


def summarise(datagram: bytes) -> tuple[int, str]:
    """The level and event name for one syslog datagram from nginx."""
    severity = 3
    if datagram.startswith(b"<") and b">" in datagram[:5]:
        try:
            severity = int(datagram[1 : datagram.index(b">")]) & 7
        except ValueError:
            pass
    level = _LEVELS.get(severity, logging.WARNING if severity == 4 else logging.INFO)
    text = datagram.decode("latin-1")
    for needle, name in KINDS:
        if needle in text:
            return level, name
    return level, "nginx_error" if level >= logging.ERROR else "nginx_notice"


class ErrorLogReceiver(DatagramReceiver):
    """A unix datagram socket nginx's error_log points at, read on a daemon thread."""

    thread_name = "nginx-errorlog"

    def _run(self) -> None:
        while True:
            try:
                datagram = self.sock.recv(65536)
            except OSError:
                return
            level, name = summarise(datagram)
            eventlog.event(name, level, source="nginx")

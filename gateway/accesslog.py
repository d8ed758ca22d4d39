"""Access logging as JSON lines: what happened, never to whom or at which address.

A request is recorded by method, facility slug, route category, status, duration and byte counts.
Paths, query strings, headers, cookies, client addresses and exception texts never reach the log:
a patient link carries its secret in the path, and upstream errors quote the URL they failed on.
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field

LOGGER = "medcell.gateway"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class JsonLineFormatter(logging.Formatter):
    """Render a record whose message is already a JSON object, adding time and level."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.msg if isinstance(record.msg, dict) else {"event": record.getMessage()}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {"ts": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower()}
        line.update(fields)
        return json.dumps(line, separators=(",", ":"))


def configure(logger: logging.Logger) -> None:
    """Give the gateway logger a JSON-lines stderr handler, once per process."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log a content-free event (only names, counts and types, never request data)."""
    logging.getLogger(LOGGER).log(level, {"event": name, **fields})


@dataclass
class AccessRecord:
    """What one request did, filled in as it is handled and logged when its response closes."""

    method: str
    started: float = field(default_factory=time.perf_counter)
    facility: str | None = None
    route: str = "gateway"
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    quiet: bool = False  # not logged at all (the gateway's own health probe)

    def emit(self) -> None:
        event(
            "request",
            method=self.method if self.method in _METHODS else "OTHER",
            facility=self.facility,
            route=self.route,
            status=self.status,
            duration_ms=round((time.perf_counter() - self.started) * 1000, 2),
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )

"""The control plane's own log: JSON lines of content-free events, never request data.

Requests are logged by nginx itself (one JSON line each, see templates/nginx.conf); this module
formats the gateway's events (routes reloaded, nginx restarted, errors by kind) the same way.
"""

import json
import logging
import sys
import time

LOGGER = "medcell.gateway"


class JsonLineFormatter(logging.Formatter):
    """Render a record whose message is a dict of fields, adding time and level."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.msg if isinstance(record.msg, dict) else {"event": record.getMessage()}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {"ts": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower()}
        line.update(fields)
        return json.dumps(line, separators=(",", ":"))


def configure(logger: logging.Logger | None = None) -> None:
    """Give the gateway logger a JSON-lines stderr handler, once per process."""
    logger = logger or logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def event(name: str, level: str | int = logging.INFO, **fields: object) -> None:
    """Log a content-free event (only names, counts and types, never request data).

    The fields are passed as a dict, never pre-encoded: the formatter encodes once.
    """
    if isinstance(level, str):
        level = _LEVELS.get(level, logging.ERROR)
    logging.getLogger(LOGGER).log(level, {"event": name, **fields})

"""The control plane's own log: JSON lines of content-free events, never request data.

Requests are logged by nginx itself (one JSON line each, see templates/nginx.conf); this module
formats the gateway's events (routes reloaded, nginx restarted, errors by kind) the same way.
"""

import logging
import sys

from medcell_common.logs import JsonFormatter

LOGGER = "medcell.gateway"


def configure(logger: logging.Logger | None = None) -> None:
    """Give the gateway logger a JSON-lines stderr handler, once per process."""
    logger = logger or logging.getLogger(LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
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

"""JSON lines on stderr: slug, event, durations and counts — never anything a facility holds.

The line shape is every image's (medcell_common.logs): `ts`, `level`, `event` and the fields.
"""

from __future__ import annotations

import logging
import sys

from medcell_common.logs import JsonFormatter

log = logging.getLogger("medcell.supervisor")


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event; callers pass only slugs, counts, durations and fixed reason words."""
    log.log(level, name, extra={"fields": {"event": name, **fields}})


def configure(stream=None) -> None:
    """Send medcell's loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("medcell")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False

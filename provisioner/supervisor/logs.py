"""JSON lines on stderr: slug, event, durations and counts — never anything a facility holds."""

from __future__ import annotations

import json
import logging
import sys
import time

log = logging.getLogger("medcell.supervisor")


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event; callers pass only slugs, counts, durations and fixed reason words."""
    log.log(level, name, extra={"fields": {"event": name, **fields}})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
        }
        fields = getattr(record, "fields", None)
        line.update(fields if isinstance(fields, dict) else {"event": record.getMessage()})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type only: messages of third-party errors may carry anything.
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, sort_keys=True, default=str)


def configure(stream=None) -> None:
    """Send medcell's loggers to stderr as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("medcell")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False

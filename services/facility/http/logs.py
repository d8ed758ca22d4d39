"""Structured logs (JSON lines) that carry no patient content, token or conversation id.

Requests are logged by their route template (``/api/v1/conversations/<conv_id>/messages``), never
by the raw path, so ids and the secret part of patient links cannot reach a log line.
"""

import json
import logging
import sys
import time

from flask import Flask, g, request


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            # Exception type and location only: messages of exceptions may quote data.
            exc_type, _, tb = record.exc_info
            while tb and tb.tb_next:
                tb = tb.tb_next
            line["error"] = exc_type.__name__ if exc_type else "unknown"
            if tb:
                line["where"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, separators=(",", ":"))


def configure() -> None:
    """Send medcell's logs as JSON lines to stderr (idempotent)."""
    root = logging.getLogger("medcell")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


def init_app(app: Flask) -> None:
    configure()
    access = logging.getLogger("medcell.access")

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log_request(response):
        rule = request.url_rule.rule if request.url_rule else "(unmatched)"
        access.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": rule,
                    "status": response.status_code,
                    "duration_ms": round(
                        (time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2
                    ),
                    "bytes_out": response.calculate_content_length(),
                }
            },
        )
        return response

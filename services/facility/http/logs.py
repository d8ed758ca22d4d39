"""Structured logs (JSON lines) that carry no patient content, token or conversation id.

Requests are logged by their route template (``/api/v1/conversations/<conv_id>/messages``), never
by the raw path, so ids and the secret part of patient links cannot reach a log line.
"""

import logging
import sys
import time

from flask import Flask, g, request

from medcell_common.logs import JsonFormatter


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
                    # A streamed body is never gathered to be counted: it would sit in memory
                    # whole (a download, an export); its Content-Length, if any, is logged.
                    "bytes_out": response.content_length
                    if response.is_streamed
                    else response.calculate_content_length(),
                }
            },
        )
        return response

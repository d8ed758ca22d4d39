"""JSON lines of content-free events: one object per record, with time and level.

A record whose message is a dict is rendered as its fields (`log.info({"event": "x", "n": 1})`),
so it is encoded exactly once; any other message becomes `{"event": message}`. Fields passed as
`extra={"fields": {...}}` are added too. Of an exception only its type and where it was raised are
kept: exception texts and tracebacks may quote request data.
"""

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
        }
        if isinstance(record.msg, dict):
            line.update(record.msg)
        else:
            line["event"] = record.getMessage()
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            exc_type, _, tb = record.exc_info
            while tb and tb.tb_next:
                tb = tb.tb_next
            line["error"] = exc_type.__name__ if exc_type else "unknown"
            if tb:
                line["where"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, separators=(",", ":"), default=str)

"""JSON lines of content-free events: one object per record, with time and level.

A record whose message is a dict is rendered as its fields (`log.info({"event": "x", "n": 1})`),
so it is encoded exactly once; any other message becomes `{"event": message}`. Fields passed as
`extra={"fields": {...}}` are added too. Of an exception only its type and where it was raised are
kept (and SQLite's error name): exception texts and tracebacks may quote request data.
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
            exc_type, exc, tb = record.exc_info
            while tb and tb.tb_next:
                tb = tb.tb_next
            line["error"] = exc_type.__name__ if exc_type else "unknown"
            # SQLite's error name ("SQLITE_BUSY", "SQLITE_IOERR_SHMOPEN") is content-free and
            # tells a locked database from a full or broken one.
            code = getattr(exc, "sqlite_errorname", None)
            if isinstance(code, str):
                line["sqlite"] = code
            if tb:
                line["where"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, separators=(",", ":"), default=str)

"""gunicorn's error log, minus request data.

gunicorn's own messages about refused or failed requests quote the request line or URI (which can
hold a patient link's token), the client address, and exception tracebacks (whose texts can quote
upstream URLs). This logger keeps the event and drops those details.
"""

import re
import sys

from gunicorn.glogging import Logger

_PLACEHOLDER = re.compile(r"\s*%[sdr]")


class ServerLog(Logger):
    def warning(self, msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith("Invalid request"):
            msg, args = "Invalid request refused", ()
        super().warning(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        # No traceback and no arguments: just what happened and the exception's type.
        error = sys.exc_info()[0]
        name = error.__name__ if error else "unknown"
        super().error("%s (%s)", _PLACEHOLDER.sub("", str(msg)), name)

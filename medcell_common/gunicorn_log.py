"""gunicorn's error log, minus request data (the facility's and the gateway's gunicorn configs).

gunicorn quotes the request URI when a request fails outside the app ("Error handling request
/p/<token>") and the raw request line when one is malformed; a patient link's token or a record
id would then reach `docker logs`. Exception texts and tracebacks can quote URLs as well. This
logger keeps what happened and the exception's type, and drops those details.
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

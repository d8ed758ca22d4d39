"""Gunicorn's own log for a facility, without request data.

Gunicorn quotes the request URI when a request fails outside the app ("Error handling request
/p/<token>") and the raw request line when one is malformed; a patient link's token or a record id
would then reach `docker logs`. This logger keeps what happened and drops those details.
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
        # The type of what went wrong, never its text or arguments: both may quote the URI.
        error = sys.exc_info()[0]
        name = error.__name__ if error else "unknown"
        super().error("%s (%s)", _PLACEHOLDER.sub("", str(msg)), name)

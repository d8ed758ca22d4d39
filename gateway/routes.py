"""routes.json v2: which facility is running, asleep or stopped, read when the file changes.

The provisioner and the supervisor replace the file atomically (temporary file + rename), each
write with a generation one higher. A file that cannot be used (truncated, invalid, another
version, a single malformed entry) never replaces the table in force: the gateway keeps serving
the last good one and logs `routes_unusable`; the next usable file is applied.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from medcell_common.interfaces import ROUTES_VERSION, RouteState

from . import eventlog
from .errors import RoutesError
from .targets import SLUG_RE

STATES = tuple(RouteState)


@dataclass(frozen=True)
class RouteTable:
    generation: int
    facilities: dict[str, str] = field(default_factory=dict)  # slug -> state


EMPTY = RouteTable(generation=0)


def parse(data: bytes | str) -> RouteTable:
    """The table in a routes.json document, or RoutesError if any part of it is unusable."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as e:
        # ValueError covers bytes that are not UTF-8; RecursionError a file of nested brackets.
        raise RoutesError("routes.json is not valid JSON") from e
    if not isinstance(document, dict) or document.get("version") != ROUTES_VERSION:
        raise RoutesError("routes.json has an unsupported version")
    generation, facilities = document.get("generation"), document.get("facilities")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise RoutesError("routes.json has no valid generation")
    if not isinstance(facilities, dict):
        raise RoutesError("routes.json has no facilities table")
    table = {}
    for slug, entry in facilities.items():
        state = entry.get("state") if isinstance(entry, dict) else None
        # Slugs and states go into nginx's configuration: only the strict forms, nothing else.
        # One bad entry spoils the whole file: applying the rest would drop that facility's
        # route (a 404 for its patients) on the word of a writer that is evidently broken.
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or state not in STATES:
            raise RoutesError("routes.json has a malformed entry")
        table[slug] = state
    return RouteTable(generation=generation, facilities=table)


class RoutesFile:
    """Follows routes.json: `poll()` returns a new table when the file changed and is usable."""

    def __init__(self, path: str, reader: Callable[[str], bytes | str] | None = None):
        self.path = path
        self._read = reader or _read_bytes
        self._signature: tuple | None = None
        self.table: RouteTable | None = None

    def poll(self) -> RouteTable | None:
        try:
            st = os.stat(self.path)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            signature = None
        if signature == self._signature and self.table is not None:
            return None
        self._signature = signature
        if signature is None:
            if self.table is None:  # never had one: no facilities yet
                self.table = EMPTY
                return EMPTY
            eventlog.event("routes_missing", "error")
            return None
        try:
            table = parse(self._read(self.path))
        except (OSError, RoutesError) as e:
            reason = e.message if isinstance(e, RoutesError) else type(e).__name__
            eventlog.event("routes_unusable", "error", reason=reason)
            if self.table is None:
                self.table = EMPTY
                return EMPTY
            return None
        if table == self.table:
            return None
        self.table = table
        return table


def _read_bytes(path: str) -> bytes:
    # Bytes, not text: a file that is not UTF-8 is then refused by parse() like any bad JSON.
    with open(path, "rb") as f:
        return f.read()

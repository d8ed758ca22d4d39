"""routes.json v2: which facility is running, asleep or stopped, read when the file changes.

The provisioner and the supervisor replace the file atomically (temporary file + rename), each
write with a generation one higher. A file that cannot be used (truncated, invalid, another
version) never replaces the table in force: the gateway keeps serving the last good one.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from . import accesslog
from .errors import RoutesError
from .targets import SLUG_RE

STATES = ("running", "asleep", "stopped")


@dataclass(frozen=True)
class RouteTable:
    generation: int
    facilities: dict[str, str] = field(default_factory=dict)  # slug -> state


EMPTY = RouteTable(generation=0)


def parse(text: str) -> RouteTable:
    """The table in a routes.json document, or RoutesError; malformed entries are skipped."""
    try:
        document = json.loads(text)
    except ValueError as e:
        raise RoutesError("routes.json is not valid JSON") from e
    if not isinstance(document, dict) or document.get("version") != 2:
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
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or state not in STATES:
            accesslog.event("route_skipped", "warning", reason="malformed entry")
            continue
        table[slug] = state
    return RouteTable(generation=generation, facilities=table)


class RoutesFile:
    """Follows routes.json: `poll()` returns a new table when the file changed and is usable."""

    def __init__(self, path: str, reader: Callable[[str], str] | None = None):
        self.path = path
        self._read = reader or _read_text
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
            accesslog.event("routes_missing", "error")
            return None
        try:
            table = parse(self._read(self.path))
        except (OSError, RoutesError) as e:
            accesslog.event("routes_unusable", "error", reason=type(e).__name__)
            if self.table is None:
                self.table = EMPTY
                return EMPTY
            return None
        if table == self.table:
            return None
        self.table = table
        return table


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()

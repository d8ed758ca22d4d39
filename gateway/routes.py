"""routes.json v2: which facility is running, asleep or stopped, read when the file changes.

The provisioner and the supervisor replace the file atomically (temporary file + rename), each
write with a generation one higher. A file that cannot be used (truncated, invalid, another
version, a single malformed entry) never replaces the table in force: the gateway keeps serving
the last good one and logs `routes_unusable`; the next usable file is applied.

In a cluster an entry may be `remote`: the facility lives on another node, whose gateway takes
its requests on its peer listener; the entry names that node and its gateway's IPv4 address.
"""

import ipaddress
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from medcell_common.interfaces import ROUTES_VERSION, RouteState

from . import eventlog
from .errors import RoutesError
from .targets import SLUG_RE

STATES = tuple(RouteState)
# A node's name as Docker Swarm spells a host name; it never goes into nginx's configuration.
NODE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62})")


@dataclass(frozen=True)
class Peer:
    """Where a remote facility lives: its node, and the address of that node's gateway."""

    node: str
    address: str


@dataclass(frozen=True)
class RouteTable:
    generation: int
    facilities: dict[str, str] = field(default_factory=dict)  # slug -> state
    peers: dict[str, Peer] = field(default_factory=dict)  # slug -> its node, for remote ones


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
    table, peers = {}, {}
    for slug, entry in facilities.items():
        state = entry.get("state") if isinstance(entry, dict) else None
        # Slugs, states and addresses go into nginx's configuration: only the strict forms.
        # One bad entry spoils the whole file: applying the rest would drop that facility's
        # route (a 404 for its patients) on the word of a writer that is evidently broken.
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug) or state not in STATES:
            raise RoutesError("routes.json has a malformed entry")
        if state == RouteState.REMOTE:
            peers[slug] = _peer(entry)
        table[slug] = state
    return RouteTable(generation=generation, facilities=table, peers=peers)


def _peer(entry: dict) -> Peer:
    node, address = entry.get("node"), entry.get("address")
    if not isinstance(node, str) or not NODE_RE.fullmatch(node) or not _unicast_ipv4(address):
        raise RoutesError("routes.json has a malformed entry")
    return Peer(node=node, address=address)


def _unicast_ipv4(address: object) -> bool:
    """An IPv4 address in its one canonical spelling (no leading zeros, no other forms)."""
    if not isinstance(address, str):
        return False
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    usable = not (ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address(2**32 - 1))
    return usable and str(ip) == address


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

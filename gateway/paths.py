"""Request targets: strict parsing and normalisation, so a path only ever means one facility path.

The gateway routes on the raw request target (never on a server's already-decoded PATH_INFO),
refuses anything ambiguous, and forwards a freshly re-encoded path: what it routed is exactly what
the facility sees. Refused outright: dot segments (also percent-encoded), encoded slashes or
backslashes, encoded percent signs (double encoding), backslashes, control characters, NUL,
non-UTF-8 bytes, absolute-form targets. Empty segments are collapsed: that never leaves the prefix.
"""

import re
from dataclasses import dataclass
from urllib.parse import quote

from .errors import BadRequest

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")

# "." and "..", also with path parameters ("..;x"), which some servers strip before resolving.
_DOT_SEGMENT = re.compile(r"\.\.?(?:;.*)?")
_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Bytes that must never appear once a segment is decoded: they would change the path's structure
# upstream ('/', '\\'), hide another encoding round ('%'), or are controls.
_FORBIDDEN_DECODED = set(b"/\\%") | set(range(0x20)) | {0x7F}
# RFC 3986 pchar without '%' and '/': re-encoding leaves nothing a server could decode further.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


@dataclass(frozen=True)
class Target:
    """A parsed request target: decoded path segments, trailing slash, and the raw query string."""

    segments: tuple[str, ...]
    trailing_slash: bool
    query: str

    def path(self, segments: tuple[str, ...] | None = None) -> str:
        """Re-encode `segments` (default: all) as a path, keeping the trailing slash."""
        segments = self.segments if segments is None else segments
        path = "/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in segments)
        if segments and self.trailing_slash:
            path += "/"
        return path

    def with_query(self, path: str) -> str:
        return f"{path}?{self.query}" if self.query else path


def raw_target(environ: dict) -> str:
    """The request target exactly as the client sent it (gunicorn and werkzeug both keep it)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        # A server that keeps no raw target: rebuild a strict equivalent from the decoded pieces.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        raw = quote(path, safe="/" + _SEGMENT_SAFE)
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    return raw


def parse_target(raw: str) -> Target:
    """Parse and normalise an origin-form request target, or raise BadRequest."""
    if not raw.startswith("/") or not _PRINTABLE.fullmatch(raw) or "#" in raw:
        raise BadRequest("The request path is not allowed.")
    path, _, query = raw.partition("?")
    if "\\" in path:
        raise BadRequest("The request path is not allowed.")
    segments = tuple(_decode_segment(s) for s in path.split("/") if s)
    return Target(segments=segments, trailing_slash=path.endswith("/"), query=query)


def _decode_segment(segment: str) -> str:
    if "%" in _PERCENT.sub("", segment):
        raise BadRequest("The request path has a malformed percent-encoding.")
    decoded = bytearray()
    last = 0
    for match in _PERCENT.finditer(segment):
        decoded += segment[last : match.start()].encode("ascii")
        decoded.append(int(match.group(1), 16))
        last = match.end()
    decoded += segment[last:].encode("ascii")
    if _FORBIDDEN_DECODED.intersection(decoded):
        raise BadRequest("The request path is not allowed.")
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest("The request path is not valid UTF-8.") from e
    if _DOT_SEGMENT.fullmatch(text):
        raise BadRequest("The request path is not allowed.")
    return text


def valid_host(host: str) -> bool:
    """True when a Host header is a plain hostname or IP literal with an optional port."""
    return bool(_HOST.fullmatch(host))


def host_slug(host: str, domain: str | None) -> str | None:
    """The facility slug addressed by `Host: <slug>.<domain>`, if host-based routing applies."""
    if not domain or not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else ""
    name = name.lower().rstrip(".")
    suffix = "." + domain
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if SLUG.fullmatch(label) else None


def route_category(segments: tuple[str, ...]) -> str:
    """A log-safe name for what a facility-relative path is, so logs never carry the path itself."""
    if not segments:
        return "page"
    head = segments[0]
    if head == "api":
        return "api"
    if head == "p":
        return "patient-link"
    if head == "static":
        return "static"
    if head == "healthz" and len(segments) == 1:
        return "health"
    return "page"

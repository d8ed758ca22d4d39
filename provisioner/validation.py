"""The contract's rules for slugs and durations."""

import re

from provisioner.errors import InvalidArgument

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
DURATION_RE = re.compile(r"^([0-9]+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_RETENTION = 7 * 86400
NAME_MAX = 200


RESERVED_SLUGS = frozenset({"gateway", "edge", "supervisor"})


def check_slug(slug: str) -> str:
    """Return the slug, or refuse it with the rule it breaks."""
    if not SLUG_RE.fullmatch(slug or ""):
        raise InvalidArgument(
            f"invalid slug {slug!r}: use 1-32 lowercase letters, digits and inner hyphens"
        )
    # These would take the names of medcell's own objects (medcell-gateway, -edge, -supervisor, and
    # the one-off medcell-<slug>-shred container that destroys a stopped facility's keys).
    if slug in RESERVED_SLUGS or slug.endswith("-shred"):
        raise InvalidArgument(f"slug {slug!r} is reserved for medcell's own Docker objects")
    return slug


def parse_duration(text: str) -> int:
    """Seconds in a duration like `30s`, `12h` or `7d`."""
    match = DURATION_RE.fullmatch(text or "")
    if not match:
        raise InvalidArgument(
            f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 7d)"
        )
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def check_retention(text: str) -> str:
    """Return the retention if it is a positive duration of at most 7 days."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise InvalidArgument("retention must be longer than zero")
    if seconds > MAX_RETENTION:
        raise InvalidArgument(f"retention {text} is longer than 7d, the most medcell keeps data")
    return text


def check_name(name: str) -> str:
    """A display name: printable, one line, not too long."""
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidArgument(f"facility name must be 1-{NAME_MAX} printable characters, one line")
    return name

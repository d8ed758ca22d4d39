"""The contract's rules for slugs and durations (from medcell_common), as the CLI's errors."""

from medcell_common import rules, sizes
from medcell_common.rules import MAX_RETENTION, SLUG_RE
from provisioner.host.errors import InvalidArgument

# Re-exported: the rest of the provisioner takes the rules from here, as InvalidArgument.
__all__ = [
    "MAX_RETENTION",
    "SLUG_RE",
    "check_name",
    "check_quota",
    "check_retention",
    "check_slug",
    "parse_duration",
]

NAME_MAX = 200


RESERVED_SLUGS = frozenset({"gateway", "edge", "supervisor"})


def check_slug(slug: str) -> str:
    """Return the slug, or refuse it with the rule it breaks."""
    try:
        rules.check_slug(slug)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    # These would take the names of medcell's own objects (medcell-gateway, -edge, -supervisor, and
    # the one-off medcell-<slug>-shred container that destroys a stopped facility's keys).
    if slug in RESERVED_SLUGS or slug.endswith("-shred"):
        raise InvalidArgument(f"slug {slug!r} is reserved for medcell's own Docker objects")
    return slug


def parse_duration(text: str) -> int:
    """Seconds in a duration like `30s`, `12h` or `7d`."""
    try:
        return rules.parse_duration(text)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None


def check_retention(text: str) -> str:
    """Return the retention if it is a positive duration of at most 7 days."""
    try:
        rules.parse_retention(text)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    return text


def check_name(name: str) -> str:
    """A display name: printable, one line, not too long."""
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidArgument(f"facility name must be 1-{NAME_MAX} printable characters, one line")
    return name


def check_quota(text: str) -> str:
    """Return the quota if it is a size like `500MiB` or `2GiB` between 1MiB and 64TiB."""
    try:
        sizes.parse_quota(text)
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    return text

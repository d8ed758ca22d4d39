"""Storage sizes as operators write them (`500MiB`, `2GiB`), one rule for CLI and facility.

Binary units only, so that `2GiB` means exactly 2 × 1024³ bytes everywhere; SI units (`MB`, `GB`)
are refused rather than guessed.
"""

import re

SIZE_RE = re.compile(r"([1-9][0-9]{0,6})(KiB|MiB|GiB|TiB)")
UNIT_BYTES = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
MIN_QUOTA = 1024**2  # 1 MiB: less would not hold one attachment's metadata and the schema
MAX_QUOTA = 64 * 1024**4  # 64 TiB: anything larger is a typo


def parse_size(text: str) -> int:
    """Bytes in a size like `500MiB` or `2GiB`; ValueError otherwise."""
    match = SIZE_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"invalid size {text!r}: use a whole number without leading zeros and "
            "KiB, MiB, GiB or TiB (e.g. 500MiB, 2GiB)"
        )
    return int(match.group(1)) * UNIT_BYTES[match.group(2)]


def parse_quota(text: str) -> int:
    """A quota in bytes: a size between 1 MiB and 64 TiB; ValueError otherwise."""
    size = parse_size(text)
    if not MIN_QUOTA <= size <= MAX_QUOTA:
        raise ValueError(f"quota {text} must be between 1MiB and 64TiB")
    return size


def format_size(size: int) -> str:
    """The shortest exact text for a number of bytes (`2GiB`, `1536KiB`), or plain bytes."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size and size % UNIT_BYTES[unit] == 0:
            return f"{size // UNIT_BYTES[unit]}{unit}"
    return f"{size}B"

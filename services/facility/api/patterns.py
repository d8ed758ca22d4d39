"""JSON Schemas of the values the API accepts, written to mean the same in ECMA-262 and Python.

Each mirrors a rule that core enforces (ids, usernames, PINs, text, retention), so the OpenAPI
document states exactly what is refused. Character classes are spelled out with \\u escapes
rather than `\\s`, whose meaning differs between regex dialects.
"""

from medcell_common.rules import MAX_RETENTION, UNIT_SECONDS
from services.facility.core.accounts import DISPLAY_NAME_CHARS, USERNAME_RE
from services.facility.core.passwords import MAX_PASSWORD, MIN_PASSWORD

# What str.strip() removes (str.isspace), as ranges: a text of only these counts as empty.
_SPACE_RANGES = [
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
]
_SPACE = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in _SPACE_RANGES)
_NOT_NUL = "[^\\u0000]"


def space_chars() -> set[str]:
    """The characters the patterns treat as white space."""
    return {chr(c) for a, b in _SPACE_RANGES for c in range(a, b + 1)}


def text(limit: int) -> dict:
    """Any text of at most `limit` characters, without NUL (which core refuses)."""
    return {
        "type": "string",
        "maxLength": limit,
        "pattern": f"^{_NOT_NUL}*$",
        "description": f"text of at most {limit} characters without NUL characters",
    }


def nonblank_text(limit: int) -> dict:
    """Text with at least one character that is not white space, without NUL."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": limit,
        "pattern": f"^{_NOT_NUL}*[^{_SPACE}\\u0000]{_NOT_NUL}*$",
        "description": f"text of 1 to {limit} characters, not only white space, without NUL",
    }


def record_id(what: str) -> dict:
    """A random record id (core's ID_RE); any other value is unknown (404)."""
    return {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]{22}$",
        "description": f"{what} id: 22 characters of A-Z, a-z, 0-9, '_' and '-'",
    }


USERNAME = {
    "type": "string",
    "pattern": USERNAME_RE.pattern,
    "description": "1 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
    "starting with a letter or digit",
}
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"
DISPLAY_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": DISPLAY_NAME_CHARS,
    "pattern": f"^[^{_CONTROL}]*[^{_SPACE}{_CONTROL}][^{_CONTROL}]*$",
    "description": f"the name colleagues and patients see on this account's messages: 1 to "
    f"{DISPLAY_NAME_CHARS} characters on one line, without control characters (surrounding "
    "spaces are dropped)",
}
PASSWORD = {
    "type": "string",
    "minLength": MIN_PASSWORD,
    "maxLength": MAX_PASSWORD,
    "description": f"{MIN_PASSWORD} to {MAX_PASSWORD} characters",
}
PIN = {"type": "string", "pattern": "^[0-9]{4,8}$", "description": "4 to 8 digits"}


def _range(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def up_to(n: int) -> str:
    """A regex for the whole numbers 1..n (n >= 1) written without leading zeros."""
    digits = str(n)
    width = len(digits)
    alternatives = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        low, rest = (1 if i == 0 else 0), width - i - 1
        if int(digit) > low:
            tail = f"[0-9]{{{rest}}}" if rest else ""
            alternatives.append(digits[:i] + _range(low, int(digit) - 1) + tail)
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


def retention() -> dict:
    """A duration of at most 7 days (medcell_common.rules), e.g. `7d`, `12h`, `90m`."""
    units = "|".join(
        f"{up_to(MAX_RETENTION // seconds)}{unit}" for unit, seconds in UNIT_SECONDS.items()
    )
    return {
        "type": "string",
        "pattern": f"^(?:{units})$",
        "description": "a whole number without leading zeros and s, m, h or d, at most 7d",
    }

"""Which request targets the gateway routes at all, as regular expressions nginx applies.

Decided on the raw target as the client sent it, before anything is decoded: dot segments (also
percent-encoded, also with ";params", which some servers strip before resolving), encoded "/",
"\\" or "%" (double encoding), backslashes, control characters, NUL, and percent-encodings that
are not well-formed UTF-8 are refused with 400. Both patterns are plain PCRE, also valid in Python.
"""

import re

from medcell_common.rules import SLUG, SLUG_RE

__all__ = ["ALLOWED", "DOT_SEGMENT", "SLUG", "SLUG_RE", "refused"]

_HEX = "[0-9A-Fa-f]"
_CONT = f"%[89ABab]{_HEX}"  # a UTF-8 continuation byte
# Printable ASCII, minus what delimits ("?", "#"), escapes ("%") or is a backslash.
_RAW = r"[^\x00-\x20\x7f-\xff#%?\x5c]"
# One encoded ASCII byte: 0x20-0x7e except "%" (25), "/" (2f) and "\" (5c).
_ASCII = "%(?:2[0-46-9A-Ea-e]|[346][0-9A-Fa-f]|5[0-9ABD-Fabd-f]|7[0-9A-Ea-e])"
# Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
_UTF8 = "|".join(
    [
        f"%(?:[Cc][2-9A-Fa-f]|[Dd]{_HEX}){_CONT}",
        f"%[Ee]0%[AaBb]{_HEX}{_CONT}",
        f"%[Ee][1-9A-Ca-c]{_CONT}{_CONT}",
        f"%[Ee][Dd]%[89]{_HEX}{_CONT}",
        f"%[Ee][EeFf]{_CONT}{_CONT}",
        f"%[Ff]0%(?:9|[AaBb]){_HEX}{_CONT}{_CONT}",
        f"%[Ff][1-3]{_CONT}{_CONT}{_CONT}",
        f"%[Ff]4%8{_HEX}{_CONT}{_CONT}",
    ]
)
_QUERY = r"(?:\?[^\x00-\x20\x7f-\xff#]*)?"

DOT_SEGMENT = r"^[^?]*/(?:\.|%2[Ee]){1,2}(?:(?:;|%3[Bb])[^/?]*)?(?:/|\?|$)"
ALLOWED = f"^/(?:{_RAW}|{_ASCII}|{_UTF8})*{_QUERY}$"

_DOT = re.compile(DOT_SEGMENT.encode())
_ALLOWED = re.compile(ALLOWED.encode())


def refused(target: bytes) -> bool:
    """True when nginx, with these patterns, refuses `target` (raw request target bytes)."""
    return bool(_DOT.search(target)) or not _ALLOWED.search(target)

"""What may be attached, recognised by content: one rule for the API and the pages.

The stored content type is always the one the bytes show, never the one a client declares: it
decides whether a download is shown inline and which decoder the PDF export uses. A client that
declares a type must declare the right one (a mismatch is refused, not corrected silently).
"""

from services.facility.core.errors import UnsupportedMediaType

# Each allowed type and the test its first bytes must pass (HEAD_BYTES are enough for all).
TYPES = {
    "image/jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "image/png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda h: h[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "image/heic": lambda h: h[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"),
    "application/pdf": lambda h: h.startswith(b"%PDF-"),
}
HEAD_BYTES = 16
# Declared types that name one of the above under another name.
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/heif": "image/heic",
    "application/x-pdf": "application/pdf",
}
# What a client sends when it does not know the type: the bytes decide alone.
UNDECLARED = ("", "application/octet-stream")
ALLOWED_TEXT = "photos (JPEG, PNG, GIF, WebP, HEIC) and PDF documents"


def sniff(head: bytes) -> str | None:
    """The allowed content type these first bytes show, or None."""
    return next((kind for kind, test in TYPES.items() if test(head)), None)


def stored_type(head: bytes, declared: str | None = None) -> str:
    """The content type to store for a file starting with `head`; UnsupportedMediaType if the
    bytes are not an allowed type or are not what the client declared."""
    kind = sniff(head)
    if kind is None:
        raise UnsupportedMediaType(f"only {ALLOWED_TEXT} can be attached")
    declared = (declared or "").split(";")[0].strip().lower()
    if declared not in UNDECLARED and ALIASES.get(declared, declared) != kind:
        raise UnsupportedMediaType(f"the file is {kind}, not {declared} as declared")
    return kind

"""The contract's deletion receipt: its fields and the canonical bytes its signature covers.

Defined once here, so the facility that signs and the CLI that verifies cannot disagree. The
signature is Ed25519 over the canonical JSON of every field but `signature`: keys sorted,
separators `,` and `:` without spaces, UTF-8.
"""

import json
import re

REASONS = ("patient", "staff", "expiry", "facility_wipe")
COUNTS = ("messages", "attachments", "record_keys")
FIELDS = ("receipt_id", "facility", "deleted_at", "reason", "counts", "verified", "signature")
ALGORITHM = "Ed25519"
RECEIPT_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
DELETED_AT_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
SIGNATURE_RE = re.compile(r"[A-Za-z0-9+/]{86}==")  # 64 bytes in standard base64


def signed_bytes(receipt: dict) -> bytes:
    """The canonical JSON of all fields but the signature: what the signature covers."""
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def check_shape(receipt: object) -> dict:
    """Return the receipt if it has exactly the contract's fields and types; else ValueError."""
    if not isinstance(receipt, dict):
        raise ValueError("a receipt is a JSON object")
    if set(receipt) != set(FIELDS):
        missing, extra = set(FIELDS) - set(receipt), set(receipt) - set(FIELDS)
        raise ValueError(
            "a receipt has exactly the fields "
            + ", ".join(FIELDS)
            + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
            + (f"; not allowed: {', '.join(sorted(extra))}" if extra else "")
        )
    counts = receipt["counts"]
    problems = [
        not _text(receipt["receipt_id"], RECEIPT_ID_RE) and "receipt_id",
        not isinstance(receipt["facility"], str) and "facility",
        not _text(receipt["deleted_at"], DELETED_AT_RE) and "deleted_at",
        receipt["reason"] not in REASONS and "reason",
        not (
            isinstance(counts, dict)
            and set(counts) == set(COUNTS)
            and all(_count(counts[k]) for k in COUNTS)
        )
        and "counts",
        not isinstance(receipt["verified"], bool) and "verified",
        not _text(receipt["signature"], SIGNATURE_RE) and "signature",
    ]
    bad = [p for p in problems if p]
    if bad:
        raise ValueError(f"malformed receipt field(s): {', '.join(bad)}")
    return receipt


def _text(value: object, pattern: re.Pattern) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

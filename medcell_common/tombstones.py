"""The tombstone of a deleted conversation, as the facility drops it and the provisioner keeps it.

A tombstone is `{"mark", "deleted_at", "reason"}`: the conversation id under the facility's
tombstone key (a keyed hash, 64 hex digits; nothing else of the conversation), the whole second of
its deletion (unix seconds) and the receipt reason. Defined once here, so the facility that writes
them and the provisioner that reads them (treating the facility as hostile) cannot disagree.
"""

import re

from medcell_common.receipts import REASONS

MARK_RE = re.compile(r"[0-9a-f]{64}")
# Where a facility drops them: a folder in its socket directory (the host's, not a volume's).
DROP_DIR = "tombstones"
DROP_FILE_RE = re.compile(r"[0-9a-f]{32}\.json")
# One drop file per deletion; a wipe of 20,000 conversations is ~2 MiB.
MAX_DROP_BYTES = 4 * 1024 * 1024
# Tombstones handed to one restore (on its stdin, after the key): the same bound, several times.
MAX_RESTORE_BYTES = 16 * 1024 * 1024


def check(item: object) -> dict:
    """The tombstone if it has exactly the three fields with valid values; else ValueError."""
    if not isinstance(item, dict) or set(item) != {"mark", "deleted_at", "reason"}:
        raise ValueError("a tombstone has exactly mark, deleted_at and reason")
    mark, when, reason = item["mark"], item["deleted_at"], item["reason"]
    if not isinstance(mark, str) or not MARK_RE.fullmatch(mark):
        raise ValueError("a tombstone's mark is 64 hex digits")
    if type(when) is not int or not 0 < when < 2**40:
        raise ValueError("a tombstone's deleted_at is unix seconds")
    if reason not in REASONS:
        raise ValueError("a tombstone's reason is a receipt reason")
    return {"mark": mark, "deleted_at": when, "reason": reason}


def check_all(items: object) -> list[dict]:
    """A list of tombstones, each checked; ValueError if it is not one."""
    if not isinstance(items, list):
        raise ValueError("tombstones come as a list")
    return [check(item) for item in items]

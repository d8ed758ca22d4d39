"""Searching, filtering and sorting the staff's list, in memory after decryption.

There is deliberately no search index: an index on disk would be a copy of titles and patient
references that outlives their deletion. The list of one facility's live conversations is small
enough to decrypt and filter per request.
"""

from dataclasses import dataclass

SORTS = ("activity", "expires", "created", "title")
MAX_QUERY = 100


@dataclass(frozen=True)
class Query:
    text: str = ""
    only_unread: bool = False
    sort: str = "activity"
    # Only those whose patient wrote last (the caller narrows by it: it needs the messages).
    only_waiting: bool = False
    # Only those assigned to the caller (the caller narrows by it too).
    only_mine: bool = False


def search_text(summary: dict) -> str:
    """What a search looks through: the title and, where there is one, the patient reference."""
    parts = [summary.get("title") or ""]
    reference = summary.get("reference")
    if isinstance(reference, dict):
        parts += [str(v) for v in reference.values() if v]
    elif reference:
        parts.append(str(reference))
    return " ".join(parts).casefold()


def select(summaries: list[dict], unread: dict[str, int], query: Query) -> list[dict]:
    """The conversations that match, in the chosen order."""
    words = query.text.casefold().split()
    items = [
        s
        for s in summaries
        if all(w in search_text(s) for w in words)
        and (not query.only_unread or unread.get(s["id"], 0) > 0)
    ]
    if query.sort == "expires":
        items.sort(key=lambda s: s["expires_at"])
    elif query.sort == "created":
        items.sort(key=lambda s: s.get("created_at", 0), reverse=True)
    elif query.sort == "title":
        # Untitled ones last, then by title; ties newest activity first.
        items.sort(key=lambda s: -s["last_activity"])
        items.sort(key=lambda s: (not s["title"], s["title"].casefold()))
    else:
        items.sort(key=lambda s: s["last_activity"], reverse=True)
    return items


def parse(args) -> Query:
    """A query from the list's form fields; anything unknown falls back to the default."""
    sort = args.get("sort", "activity")
    return Query(
        text=str(args.get("q", ""))[:MAX_QUERY].strip(),
        only_unread=args.get("unread") == "1",
        sort=sort if sort in SORTS else "activity",
        only_waiting=args.get("waiting") == "1",
        only_mine=args.get("mine") == "1",
    )

"""The staff's conversation list: unread badges (per account), and what the tab title counts."""

from flask import url_for

from services.facility.core import reading
from services.facility.core.accounts import Principal
from services.facility.http.context import conn, ctx


def view(summaries: list[dict], who: Principal, args) -> dict:
    """The values home.html needs for its list."""
    c = conn()
    unread = reading.unread_counts(c, who.staff_id, reading.live_after(ctx()["conversations"], c))
    return {
        "conversations": summaries,
        "unread": unread,
        "unread_conversations": len(unread),
        "unread_poll": url_for("api_unread.unread"),
    }

"""The staff's inbox: search, filters, sort, paging; per row the patient, the last message, who
wrote it, whether the patient waits for a reply, and unread badges."""

from urllib.parse import urlencode

from flask import url_for

from services.facility.core import accounts, conversation_list, inbox, reading
from services.facility.core.accounts import Principal
from services.facility.core.notes import Notes
from services.facility.http.context import conn, ctx

PAGE_SIZE = 20


def view(summaries: list[dict], who: Principal, args) -> dict:
    """The values home.html needs for its list."""
    c = conn()
    unread = reading.unread_counts(c, who.staff_id, reading.live_after(ctx().conversations, c))
    query = conversation_list.parse(args)
    matches = conversation_list.select(summaries, unread, query)
    if query.only_waiting:
        waiting = inbox.waiting(c, [s["id"] for s in matches])
        matches = [s for s in matches if s["id"] in waiting]
    if query.only_mine:
        assigned = Notes.assignees(c)
        matches = [s for s in matches if assigned.get(s["id"]) == who.staff_id]
    pages = max(1, -(-len(matches) // PAGE_SIZE))
    try:
        page = min(max(1, int(args.get("page", "1"))), pages)
    except ValueError:
        page = 1
    start = (page - 1) * PAGE_SIZE
    return {
        # Only the shown page's last messages are opened (in memory, for this page).
        "conversations": inbox.rows(
            ctx().conversations, c, matches[start : start + PAGE_SIZE], unread
        ),
        "names": accounts.display_names(c),
        "total": len(summaries),
        "matched": len(matches),
        "query": query,
        "sorts": conversation_list.SORTS,
        "page": page,
        "pages": pages,
        "page_url": lambda n: _page_url(query, n),
        "unread": unread,
        "unread_conversations": len(unread),
        "unread_poll": url_for("api_unread.unread"),
    }


def _page_url(query: conversation_list.Query, page: int) -> str:
    params = {"q": query.text, "sort": query.sort, "page": page}
    if query.only_unread:
        params["unread"] = "1"
    if query.only_waiting:
        params["waiting"] = "1"
    if query.only_mine:
        params["mine"] = "1"
    return f"{url_for('staff.home')}?{urlencode(params)}"

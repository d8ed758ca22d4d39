"""The conversation page and its compose form, shared by the patient's side and the staff's side.

One form sends text, a file, or both; it works without JavaScript (post, then redirect back to
the page); the page's script only adds a character counter and polling for new messages on top.
"""

from flask import Response, g, request

from services.facility.core import accounts, edits, reading
from services.facility.core.conversations import MAX_FILES
from services.facility.core.errors import (
    BadRequest,
    ConversationFull,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooLong,
    TooManyRequests,
    UnsupportedMediaType,
)
from services.facility.core.settings import retention_seconds
from services.facility.http.context import conn, ctx
from services.facility.pages import common as web
from services.facility.pages import i18n
from services.facility.pages.record_views import conversation_values


def render(
    conv_id: str,
    side: str,
    urls: dict,
    *,
    error: str | None = None,
    status: int = 200,
    body_value: str = "",
    **extra,
) -> Response:
    """The conversation as `side` ("patient" or "staff") sees it."""
    conversations, config, c = ctx().conversations, ctx().config, conn()
    summary = conversations.get(c, conv_id)
    since = conversations.changes_cursor()  # the page's polls bring corrections made from now on
    messages = conversations.messages(c, conv_id)
    # Rendered for this reader: what the page shows is read (receipts for the other side).
    reader = reading.PATIENT if side == "patient" else g.staff.staff_id
    reading.mark_read(c, conv_id, reader, [m["id"] for m in messages])
    reading.annotate(c, conv_id, messages)
    me = g.staff.staff_id if side == "staff" else None
    _mark_editable(messages, side, me, conversations.clock())
    other = web.t("msg.facility", name=config.facility_name) if side == "patient" else None
    # The title is the staff's note (it may name the patient); the patient sees the facility.
    if side == "staff":
        heading = summary["title"] or web.t("conv.untitled")
    else:
        heading = web.t("conv.patient_heading", name=config.facility_name)
    return web.page(
        "conversation.html",
        status,
        conv=summary,
        heading=heading,
        messages=messages,
        since=since,
        side=side,
        urls=urls,
        error=error,
        body_value=body_value,
        retention=retention_seconds(c, config.retention),
        max_bytes=config.max_attachment_bytes,
        max_body=config.max_body_chars,
        accept=web.UPLOAD_ACCEPT,
        own_label=web.t("msg.you"),
        other_label=other or web.t("msg.patient"),
        # Staff messages by the colleague's display name; "you" only for the reader's own.
        names=accounts.display_names(c),
        me=me,
        edit_minutes=edits.EDIT_WINDOW_SECONDS // 60,
        team_label=other or web.t("msg.team"),
        # Not a person's answer: the patient must not take it for one, nor the team for theirs.
        automatic_label=(f"{other} · " if other else "") + web.t("msg.automatic"),
        named_label=web.t(
            "msg.staff_named" if side == "patient" else "msg.colleague",
            name="{name}",
            facility=config.facility_name,
        ),
        **conversation_values(c, conv_id, summary, side),
        **extra,
    )


def _mark_editable(messages: list[dict], side: str, me: int | None, now: int) -> None:
    """Each message's `edit_until`: until when the reader may still change it (None: not)."""
    for m in messages:
        own = m["author"] == side and (side == "patient" or m["staff_id"] == me)
        until = edits.editable_until(m["created_at"])
        live = own and m["deleted_at"] is None and now <= until
        m["edit_until"] = until if live else None


def edit_page(
    conv_id: str, msg_id: str, side: str, urls: dict, edit_error: dict | None = None
) -> Response:
    """The page to correct or delete one's own message (404 once it may not be changed)."""
    conversations, c = ctx().conversations, conn()
    me = g.staff.staff_id if side == "staff" else None
    messages = conversations.messages(c, conv_id)
    _mark_editable(messages, side, me, conversations.clock())
    message = next((m for m in messages if m["id"] == msg_id and m["edit_until"]), None)
    if message is None:
        raise NotFound("no message of yours to change here")
    return web.page(
        "message_edit.html",
        edit_error["status"] if edit_error else 200,
        m=message,
        edit_base=urls["edit_base"],
        back=f"{urls['self']}#m-{msg_id}",
        max_body=ctx().config.max_body_chars,
        edit_error=edit_error,
    )


def change(conv_id: str, msg_id: str, author: str, action: str) -> dict | None:
    """Post a message's correct or delete form: None, or the error to show at the message."""
    conversations, c = ctx().conversations, conn()
    body = request.form.get("body", "")
    try:
        if action == "correct":
            edits.correct(conversations, c, conv_id, msg_id, author, _writer(author), body)
        else:
            edits.delete(conversations, c, conv_id, msg_id, author, _writer(author))
    except edits.EditWindowClosed as e:
        text, status = web.t("edit.closed", n=edits.EDIT_WINDOW_SECONDS // 60), e.status
    except edits.MessageDeleted as e:
        text, status = web.t("edit.gone"), e.status
    except (ConversationFull, InsufficientStorage) as e:
        text, status = storage_error(e), e.status
    except TooLong:
        text, status = web.t("reply.too_long", n=ctx().config.max_body_chars), 400
    except BadRequest:
        text, status = web.t("reply.empty"), 400
    else:
        return None
    return {"id": msg_id, "text": text, "value": body, "status": status}


def compose(conv_id: str, author: str) -> tuple[str | None, int, str]:
    """Post the compose form: a file (with the text as its note) or text alone."""
    if any(upload.filename for upload in request.files.getlist("file")):
        return add_attachment(conv_id, author)
    if not request.form.get("body", "").strip():
        return web.t("compose.empty"), 400, ""
    return add_message(conv_id, author)


def add_message(conv_id: str, author: str) -> tuple[str | None, int, str]:
    """Post the reply form: (error text or None, status, new message id)."""
    body = request.form.get("body", "")
    try:
        message = ctx().conversations.add_message(conn(), conv_id, author, body, _writer(author))
    except (ConversationFull, InsufficientStorage) as e:
        return storage_error(e), e.status, ""
    except TooLong:
        return web.t("reply.too_long", n=ctx().config.max_body_chars), 400, ""
    except BadRequest:
        return web.t("reply.empty"), 400, ""
    return None, 201, message["id"]


def add_attachment(conv_id: str, author: str) -> tuple[str | None, int, str]:
    """Post the compose form's files (the chooser's and the camera's, several at once): photos
    and PDFs only, recognised by their content (core's rule, as for the API; what the browser
    guessed from the file name is not asked)."""
    config = ctx().config
    uploads = [u for u in request.files.getlist("file") if u.filename]
    if len(uploads) > MAX_FILES:
        return web.t("attach.too_many", n=MAX_FILES), 400, ""
    try:
        (first, *_) = ctx().conversations.add_attachments(
            conn(),
            conv_id,
            author,
            [(upload.filename, None, upload.stream) for upload in uploads],
            request.form.get("body", ""),
            _writer(author),
        )
    except UnsupportedMediaType:
        return web.t("attach.bad_type"), 415, ""
    except (ConversationFull, InsufficientStorage, TooManyRequests) as e:
        return storage_error(e), e.status, ""
    except PayloadTooLarge:
        size = i18n.format_size(config.max_attachment_bytes, g.lang)
        return web.t("attach.too_large", size=size), 413, ""
    except TooLong:
        return web.t("reply.too_long", n=config.max_body_chars), 400, ""
    except BadRequest:
        return web.t("attach.bad_name"), 400, ""
    return None, 201, first["message_id"]


def _writer(author: str) -> int | None:
    """The staff account writing (None for the patient)."""
    return g.staff.staff_id if author == "staff" else None


def storage_error(e: Exception) -> str:
    """The notice shown next to the form when there is no room (or no upload allowance) left."""
    if isinstance(e, ConversationFull):
        return web.t("quota.conversation_full")
    if isinstance(e, TooManyRequests):
        return web.t("quota.uploads_throttled")
    return web.t("quota.facility_full")

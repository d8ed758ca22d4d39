"""Conversations over the API: open, list, read, write, attach, fetch a file, delete."""

from flask import Blueprint, g, jsonify, request

from medcell_common.interfaces import POLL_HEADER
from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.records import reference_input
from services.facility.api.validation import form, json_body, query
from services.facility.core import accounts, patients, reading, uploads
from services.facility.core.config import Config
from services.facility.core.conversations import ID_RE
from services.facility.core.errors import BadRequest, NotFound
from services.facility.http.auth import require
from services.facility.http.context import (
    conn,
    ctx,
    iso,
    patient_url,
)
from services.facility.http.downloads import INLINE_TYPES, attachment_response
from services.facility.http.records import records as filing

bp = Blueprint("conversations_api", __name__)


def conversation_json(summary: dict) -> dict:
    return {
        "id": summary["id"],
        "title": summary["title"],
        "last_activity": iso(summary["last_activity"]),
        "expires_at": iso(summary["expires_at"]),
    }


@bp.post("/api/v1/conversations")
@require()
def create_conversation():
    body = json_body()
    pin_hash = patients.hash_pin(conn(), body.get("pin"))
    conv_id, token = ctx().conversations.create(
        conn(), body.get("title"), pin_hash, body.get("reference")
    )
    return jsonify(id=conv_id, patient_token=token, patient_url=patient_url(token)), 201


@bp.get("/api/v1/conversations")
@require()
def list_conversations():
    items = ctx().conversations.summaries(conn())
    return jsonify(conversations=[conversation_json(c) for c in items])


@bp.delete("/api/v1/conversations")
@require(admin=True)
def delete_all_conversations():
    if query("confirm") != ctx().config.facility:
        raise BadRequest("to delete all patient data, pass ?confirm=<facility slug>")
    return jsonify(ctx().conversations.delete_all(conn()))


@bp.get("/api/v1/conversations/<conv_id>")
@require(patient=True)
def get_conversation(conv_id: str):
    if not ID_RE.match(conv_id):
        raise NotFound("no such conversation")
    summary = conversation_json(ctx().conversations.get(conn(), conv_id))
    if g.principal.kind == "patient":
        # The title is the staff's label for the conversation (it may hold internal notes);
        # the patient's own page does not show it either.
        del summary["title"]
    return jsonify(summary)


@bp.delete("/api/v1/conversations/<conv_id>")
@require(patient=True)
def delete_conversation(conv_id: str):
    receipt = ID_RE.match(conv_id) and ctx().conversations.delete(
        conn(), conv_id, reason=g.principal.kind
    )
    if not receipt:
        raise NotFound("no such conversation")
    return jsonify(receipt=receipt)


@bp.post("/api/v1/conversations/<conv_id>/messages")
@require(patient=True)
def post_message(conv_id: str):
    body = json_body()
    msg = ctx().conversations.add_message(
        conn(), conv_id, g.principal.kind, body.get("body"), g.principal.staff_id
    )
    return jsonify(id=msg["id"], author=msg["author"], created_at=iso(msg["created_at"])), 201


@bp.get("/api/v1/conversations/<conv_id>/messages")
@require(patient=True)
def list_messages(conv_id: str):
    after = query("after")
    conversations = ctx().conversations
    cursor = conversations.changes_cursor()  # before the read: a change after it comes next time
    items = conversations.messages(conn(), conv_id, after, query("since"))
    polled = request.headers.get(POLL_HEADER) == "1"
    if g.principal.kind == "staff" and after is None and not polled:
        filing().opened(conn(), conv_id, g.principal.username)  # live polls are not opens
    reading.mark_read(conn(), conv_id, reading.reader_of(g.principal), [m["id"] for m in items])
    reading.annotate(conn(), conv_id, items)
    names = accounts.display_names(conn())
    for item in items:
        item["created_at"] = iso(item["created_at"])
        item["edited_at"] = item["edited_at"] and iso(item["edited_at"])
        item["deleted_at"] = item["deleted_at"] and iso(item["deleted_at"])
        writer = item.pop("staff_id")
        item["author_name"] = names.get(writer) if writer else None
        # Whether the caller wrote it: this staff account, or the conversation's patient.
        item["own"] = (
            writer is not None and writer == g.principal.staff_id
            if g.principal.kind == "staff"
            else item["author"] == "patient"
        )
    up_to = reading.read_up_to(conn(), conv_id, g.principal.kind)
    return jsonify(messages=items, read_up_to=up_to, since=cursor)


@bp.post("/api/v1/conversations/<conv_id>/attachments")
@require(patient=True)
def post_attachment(conv_id: str):
    conversations = ctx().conversations
    conversations.require_live(conn(), conv_id)
    if request.mimetype != "multipart/form-data":
        raise BadRequest("send the file as multipart/form-data in the field 'file'")
    fields = form()
    upload = request.files["file"]
    result = conversations.add_attachment(
        conn(),
        conv_id,
        g.principal.kind,
        upload.filename or "",
        upload.mimetype,
        upload.stream,
        fields.get("body", ""),
        g.principal.staff_id,
    )
    return jsonify(id=result["id"], filename=result["filename"], size=result["size"]), 201


@bp.get("/api/v1/attachments/<att_id>")
@require(patient=True)
def get_attachment(att_id: str):
    return attachment_response(att_id, g.principal)


# -- the OpenAPI document -----------------------------------------------------------------

CONVERSATION_LINKS = {
    "messages": "/api/v1/conversations/{conv_id}/messages",
    "attachments": "/api/v1/conversations/{conv_id}/attachments",
    "conversation": "/api/v1/conversations/{conv_id}",
    "export": "/api/v1/conversations/{conv_id}/export",
    "reference": "/api/v1/conversations/{conv_id}/reference",
    "access_log": "/api/v1/conversations/{conv_id}/access-log",
    "notifications": "/api/v1/conversations/{conv_id}/notifications",
    "link_mail": "/api/v1/conversations/{conv_id}/link-mail",
}


def openapi_paths(config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    message = doc.obj(
        ["id", "author", "body", "created_at", "attachments"],
        id=doc.STR,
        author={"type": "string", "enum": ["staff", "patient"]},
        body=doc.STR,
        created_at=doc.TIME,
        attachments={"type": "array", "items": doc.ref("AttachmentInfo")},
        read={"type": "boolean", "description": "the side that did not write it has read it"},
        author_name={
            "type": "string",
            "nullable": True,
            "description": "the display name of the colleague who wrote a staff message (null: "
            "a patient message, or one whose writer is not known)",
        },
        own={
            "type": "boolean",
            "description": "the caller wrote it (this staff account; for the patient: their own)",
        },
        automatic={
            "type": "boolean",
            "description": "the practice's automatic reply outside opening hours sent it (a staff "
            "message nobody wrote)",
        },
        edited_at={
            **doc.TIME,
            "nullable": True,
            "description": "when its writer corrected it (null: never); the old text is gone",
        },
        deleted_at={
            **doc.TIME,
            "nullable": True,
            "description": "when its writer deleted it (null: not deleted); body is then empty "
            "and attachments none",
        },
    )
    conversation = doc.obj(
        ["id", "title", "last_activity", "expires_at"],
        id=doc.STR,
        title=doc.STR,
        last_activity=doc.TIME,
        expires_at=doc.TIME,
    )
    conv_links = {
        f"{name}_{method}": doc.link(
            path, method, f"{method.upper()} {path}", conv_id="$response.body#/id"
        )
        for name, path, methods in (
            ("conversation", CONVERSATION_LINKS["conversation"], ("get", "delete")),
            ("messages", CONVERSATION_LINKS["messages"], ("get", "post")),
            ("attachments", CONVERSATION_LINKS["attachments"], ("post",)),
            ("export", CONVERSATION_LINKS["export"], ("get",)),
            ("reference", CONVERSATION_LINKS["reference"], ("get", "put")),
            ("access_log", CONVERSATION_LINKS["access_log"], ("get",)),
            ("notifications", CONVERSATION_LINKS["notifications"], ("get", "put")),
            ("link_mail", CONVERSATION_LINKS["link_mail"], ("post",)),
        )
        for method in methods
    }
    return {
        "/api/v1/conversations": {
            "post": doc.op(
                "Open a conversation (staff)",
                {
                    "201": {
                        **doc.json(
                            doc.obj(
                                ["id", "patient_token", "patient_url"],
                                id=doc.STR,
                                patient_token=doc.STR,
                                patient_url=doc.STR,
                            ),
                            "Created",
                        ),
                        "links": conv_links,
                    },
                    "400": doc.error("Malformed request"),
                    "403": doc.error("Staff only"),
                },
                body={
                    "required": False,
                    "description": "pin: an optional second factor the patient must enter; the "
                    "patient token alone then grants nothing (403 pin_required)",
                    "content": {
                        "application/json": {
                            "schema": doc.input_object(
                                [],
                                title=patterns.text(config.max_title_chars),
                                reference=reference_input(nullable=True),
                                pin=patterns.PIN,
                            )
                        }
                    },
                },
            ),
            "get": doc.op(
                "List live conversations (staff)",
                {
                    "200": doc.json(
                        doc.obj(
                            ["conversations"],
                            conversations={"type": "array", "items": conversation},
                        )
                    ),
                    "403": doc.error("Staff only"),
                },
            ),
            "delete": doc.op(
                "Delete all patient data of the facility (admin)",
                {
                    "200": doc.json(
                        doc.obj(
                            ["deleted", "receipt"],
                            deleted={"type": "integer", "minimum": 0},
                            receipt=doc.ref("Receipt"),
                        ),
                        "Deleted; one receipt (reason facility_wipe) for the whole wipe",
                    ),
                    "400": doc.error("Missing or wrong confirmation"),
                    "403": doc.error("Admins only"),
                },
                params=[
                    {
                        "name": "confirm",
                        "in": "query",
                        "required": True,
                        "description": "the facility's slug, to confirm",
                        "schema": {"type": "string", "enum": [config.facility]},
                    }
                ],
            ),
        },
        "/api/v1/conversations/{conv_id}": {
            "get": doc.op(
                "One conversation (without its title when the conversation's patient asks)",
                {
                    "200": doc.json(
                        {**conversation, "required": ["id", "last_activity", "expires_at"]}
                    ),
                    "404": doc.NOT_FOUND,
                },
                params=[doc.CONV_ID],
            ),
            "delete": doc.op(
                "Delete the conversation completely, at once; answers its signed receipt",
                {
                    "200": doc.json(doc.obj(["receipt"], receipt=doc.ref("Receipt")), "Deleted"),
                    "404": doc.NOT_FOUND,
                },
                params=[doc.CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/messages": {
            "post": doc.op(
                "Send a message",
                {
                    "201": doc.json(
                        doc.obj(
                            ["id", "author", "created_at"],
                            id=doc.STR,
                            author={"type": "string", "enum": ["staff", "patient"]},
                            created_at=doc.TIME,
                        ),
                        "Created",
                    ),
                    "400": doc.error("Malformed request, or a body over its maxLength"),
                    "404": doc.NOT_FOUND,
                    "413": doc.error(
                        "Request body over its size limit, or the conversation is full"
                    ),
                },
                body=doc.body(
                    doc.input_object(["body"], body=patterns.nonblank_text(config.max_body_chars))
                ),
                params=[doc.CONV_ID],
            ),
            "get": doc.op(
                "Messages, oldest first",
                {
                    "500": doc.DAMAGED,
                    "200": doc.json(
                        doc.obj(
                            ["messages"],
                            messages={"type": "array", "items": message},
                            read_up_to={
                                "type": "string",
                                "nullable": True,
                                "description": "the newest message of the caller's side that "
                                "the other side has read",
                            },
                            since={
                                "type": "integer",
                                "description": "pass it as 'since' with the next 'after' to "
                                "also get the earlier messages corrected or deleted from now on",
                            },
                        ),
                        "The messages; fetching them marks them read for the caller",
                    ),
                    "400": doc.error("Bad 'after' or 'since'"),
                    "404": doc.NOT_FOUND,
                },
                params=[
                    doc.CONV_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "only messages after this message id (an unknown id: "
                        "all messages)",
                        "schema": patterns.record_id("message"),
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "description": "with 'after': also the messages before it that were "
                        "corrected or deleted since this point (the 'since' of an earlier answer)",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
            ),
        },
        "/api/v1/conversations/{conv_id}/attachments": {
            "post": doc.op(
                "Attach a file (it arrives as a message)",
                {
                    "201": {
                        **doc.json(
                            doc.obj(
                                ["id", "filename", "size"],
                                id=doc.STR,
                                filename=doc.STR,
                                size={"type": "integer", "minimum": 0},
                            ),
                            "Created",
                        ),
                        "links": {
                            "download": doc.link(
                                "/api/v1/attachments/{att_id}",
                                "get",
                                "the file's bytes",
                                att_id="$response.body#/id",
                            )
                        },
                    },
                    "400": doc.error("No file, a file without a name, or a body over maxLength"),
                    "404": doc.NOT_FOUND,
                    "413": doc.error(
                        f"File over {config.max_attachment_bytes} bytes, "
                        "or the conversation is full"
                    ),
                    "415": doc.error(
                        f"Only {uploads.ALLOWED_TEXT} can be attached, recognised by their "
                        "content; a declared type must be the one the content shows"
                    ),
                },
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": doc.input_object(
                                ["file"],
                                file={
                                    "type": "string",
                                    "format": "binary",
                                    "description": f"at most {config.max_attachment_bytes} "
                                    f"bytes, sent as a file part with a file name: {doc.UPLOADS}; "
                                    "the stored type is the one its content shows",
                                },
                                body=patterns.text(config.max_body_chars),
                            ),
                            "encoding": {
                                "file": {
                                    "contentType": ", ".join(
                                        [*uploads.TYPES, "application/octet-stream"]
                                    )
                                }
                            },
                        }
                    },
                },
                params=[doc.CONV_ID],
            )
        },
        "/api/v1/attachments/{att_id}": {
            "get": doc.op(
                "The file's bytes",
                {
                    "500": doc.DAMAGED,
                    "200": {
                        "description": "The file: shown inline if it is an image or a PDF "
                        "(unless ?download is given), else as application/octet-stream",
                        "content": {
                            kind: {"schema": {"type": "string", "format": "binary"}}
                            for kind in (*sorted(INLINE_TYPES), "application/octet-stream")
                        },
                    },
                    "404": doc.error("No such attachment"),
                },
                params=[
                    {
                        "name": "att_id",
                        "in": "path",
                        "required": True,
                        "schema": patterns.record_id("attachment"),
                    },
                    {
                        "name": "download",
                        "in": "query",
                        "required": False,
                        "description": "present (with any value): always as a download "
                        "(application/octet-stream)",
                        "schema": doc.STR,
                        "allowEmptyValue": True,
                    },
                ],
            )
        },
    }


def openapi_schemas() -> dict:
    """The schemas this module's paths refer to (components/schemas)."""
    return {
        "AttachmentInfo": doc.obj(
            ["id", "filename", "size"],
            id=doc.STR,
            filename=doc.STR,
            size={"type": "integer"},
            content_type=doc.STR,
        ),
    }

"""The OpenAPI 3 description of the facility API, served at /api/v1/openapi.json."""

from services.facility.api import patterns
from services.facility.core.config import Config
from services.facility.http.downloads import INLINE_TYPES


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    responses: dict,
    *,
    auth: bool = True,
    body: dict | None = None,
    params: list | None = None,
) -> dict:
    op = {"summary": summary, "responses": responses}
    if not auth:
        op["security"] = []
    else:
        responses.setdefault("401", _error("Missing, invalid or expired token"))
        responses.setdefault(
            "403", _error("Not allowed for this caller (or a patient link whose PIN is owed)")
        )
        responses.setdefault("429", _error("Too many failed attempts"))
    # Every route refuses a body above its limit before reading it (256 KiB; uploads: the maximum).
    responses.setdefault("413", _error("The request body (or a text in it) is too large"))
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _obj(required: list[str], **props: dict) -> dict:
    # OpenAPI 3.0 wants `required` left out rather than empty.
    return {"type": "object", **({"required": required} if required else {}), "properties": props}


def _input(required: list[str], **props: dict) -> dict:
    """A request object: the app refuses fields it does not know (api/validation.py)."""
    return {**_obj(required, **props), "additionalProperties": False}


def _link(path: str, method: str, description: str, **parameters: str) -> dict:
    """An OpenAPI link: where a response's values lead (clients and fuzzers follow them)."""
    ref = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{ref}/{method}",
        "description": description,
        "parameters": parameters,
    }


STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
NO_CONTENT = {"description": "Done"}
CONV_ID = {
    "name": "conv_id",
    "in": "path",
    "required": True,
    "schema": patterns.record_id("conversation"),
}
CONVERSATION_LINKS = {
    "messages": "/api/v1/conversations/{conv_id}/messages",
    "attachments": "/api/v1/conversations/{conv_id}/attachments",
    "conversation": "/api/v1/conversations/{conv_id}",
}


def spec(config: Config) -> dict:
    """The document, with this facility's limits filled in."""
    message = _obj(
        ["id", "author", "body", "created_at", "attachments"],
        id=STR,
        author={"type": "string", "enum": ["staff", "patient"]},
        body=STR,
        created_at=TIME,
        attachments={"type": "array", "items": _ref("AttachmentInfo")},
    )
    conversation = _obj(
        ["id", "title", "last_activity", "expires_at"],
        id=STR,
        title=STR,
        last_activity=TIME,
        expires_at=TIME,
    )
    not_found = _error("No such conversation, or not yours")
    conv_links = {
        f"{name}_{method}": _link(
            path, method, f"{method.upper()} {path}", conv_id="$response.body#/id"
        )
        for name, path, methods in (
            ("conversation", CONVERSATION_LINKS["conversation"], ("get", "delete")),
            ("messages", CONVERSATION_LINKS["messages"], ("get", "post")),
            ("attachments", CONVERSATION_LINKS["attachments"], ("post",)),
        )
        for method in methods
    }
    paths = {
        "/healthz": {
            "get": _op("Health check", {"200": _json(_obj(["status"], status=STR))}, auth=False)
        },
        "/api/v1/openapi.json": {
            "get": _op("This document", {"200": _json({"type": "object"})}, auth=False)
        },
        "/api/v1/login": {
            "post": _op(
                "Staff login; returns a bearer token",
                {
                    "200": _json(_obj(["token"], token=STR)),
                    "400": _error("Malformed request"),
                    "401": _error("Wrong username or password"),
                    "429": _error("Too many failures"),
                },
                auth=False,
                body=_body(_input(["username", "password"], username=STR, password=STR)),
            )
        },
        "/api/v1/logout": {"post": _op("End this staff session", {"204": NO_CONTENT})},
        "/api/v1/me": {
            "get": _op(
                "Who the token belongs to",
                {
                    "200": _json(
                        _obj(
                            ["kind"],
                            kind={"type": "string", "enum": ["staff", "patient"]},
                            username=STR,
                            role={"type": "string", "enum": ["admin", "staff"]},
                            conversation_id=STR,
                        )
                    )
                },
            )
        },
        "/api/v1/conversations": {
            "post": _op(
                "Open a conversation (staff)",
                {
                    "201": {
                        **_json(
                            _obj(
                                ["id", "patient_token", "patient_url"],
                                id=STR,
                                patient_token=STR,
                                patient_url=STR,
                            ),
                            "Created",
                        ),
                        "links": conv_links,
                    },
                    "400": _error("Malformed request"),
                    "403": _error("Staff only"),
                },
                body={
                    "required": False,
                    "description": "pin: an optional second factor the patient must enter; the "
                    "patient token alone then grants nothing (403 pin_required)",
                    "content": {
                        "application/json": {
                            "schema": _input(
                                [],
                                title=patterns.text(config.max_title_chars),
                                pin=patterns.PIN,
                            )
                        }
                    },
                },
            ),
            "get": _op(
                "List live conversations (staff)",
                {
                    "200": _json(
                        _obj(
                            ["conversations"],
                            conversations={"type": "array", "items": conversation},
                        )
                    ),
                    "403": _error("Staff only"),
                },
            ),
            "delete": _op(
                "Delete all patient data of the facility (admin)",
                {
                    "200": _json(_obj(["deleted"], deleted={"type": "integer", "minimum": 0})),
                    "400": _error("Missing or wrong confirmation"),
                    "403": _error("Admins only"),
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
        "/api/v1/patient-sessions": {
            "post": _op(
                "Trade a patient token (and its PIN, if set) for a patient session token",
                {
                    "201": _json(_obj(["token"], token=STR), "Created"),
                    "400": _error("Malformed request"),
                    "401": _error("Wrong PIN"),
                    "403": _error("PIN missing (pin_required) or link locked (link_locked)"),
                    "404": _error("Unknown patient token"),
                    "429": _error("Too many failures"),
                },
                auth=False,
                body=_body(
                    _input(
                        ["token"],
                        token={
                            "type": "string",
                            "minLength": 20,
                            "maxLength": 128,
                            "description": "the secret of the patient link",
                        },
                        pin={"type": "string", "description": "the conversation's PIN, if set"},
                    )
                ),
            )
        },
        "/api/v1/conversations/{conv_id}": {
            "get": _op(
                "One conversation (without its title when the conversation's patient asks)",
                {
                    "200": _json(
                        {**conversation, "required": ["id", "last_activity", "expires_at"]}
                    ),
                    "404": not_found,
                },
                params=[CONV_ID],
            ),
            "delete": _op(
                "Delete the conversation completely, at once",
                {"204": NO_CONTENT, "404": not_found},
                params=[CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/messages": {
            "post": _op(
                "Send a message",
                {
                    "201": _json(
                        _obj(
                            ["id", "author", "created_at"],
                            id=STR,
                            author={"type": "string", "enum": ["staff", "patient"]},
                            created_at=TIME,
                        ),
                        "Created",
                    ),
                    "400": _error("Malformed request"),
                    "404": not_found,
                    "413": _error("Body too long"),
                },
                body=_body(_input(["body"], body=patterns.nonblank_text(config.max_body_chars))),
                params=[CONV_ID],
            ),
            "get": _op(
                "Messages, oldest first",
                {
                    "200": _json(_obj(["messages"], messages={"type": "array", "items": message})),
                    "400": _error("Bad 'after'"),
                    "404": not_found,
                },
                params=[
                    CONV_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "only messages after this message id (an unknown id: "
                        "all messages)",
                        "schema": patterns.record_id("message"),
                    },
                ],
            ),
        },
        "/api/v1/conversations/{conv_id}/attachments": {
            "post": _op(
                "Attach a file (it arrives as a message)",
                {
                    "201": {
                        **_json(
                            _obj(
                                ["id", "filename", "size"],
                                id=STR,
                                filename=STR,
                                size={"type": "integer", "minimum": 0},
                            ),
                            "Created",
                        ),
                        "links": {
                            "download": _link(
                                "/api/v1/attachments/{att_id}",
                                "get",
                                "the file's bytes",
                                att_id="$response.body#/id",
                            )
                        },
                    },
                    "400": _error("No file, or a file without a name"),
                    "404": not_found,
                    "413": _error(f"File over {config.max_attachment_bytes} bytes"),
                },
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _input(
                                ["file"],
                                file={
                                    "type": "string",
                                    "format": "binary",
                                    "description": f"at most {config.max_attachment_bytes} "
                                    "bytes, sent as a file part with a file name",
                                },
                                body=patterns.text(config.max_body_chars),
                            ),
                            "encoding": {"file": {"contentType": "application/octet-stream"}},
                        }
                    },
                },
                params=[CONV_ID],
            )
        },
        "/api/v1/attachments/{att_id}": {
            "get": _op(
                "The file's bytes",
                {
                    "200": {
                        "description": "The file: shown inline if it is an image or a PDF "
                        "(unless ?download is given), else as application/octet-stream",
                        "content": {
                            kind: {"schema": {"type": "string", "format": "binary"}}
                            for kind in (*sorted(INLINE_TYPES), "application/octet-stream")
                        },
                    },
                    "404": _error("No such attachment"),
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
                        "schema": STR,
                        "allowEmptyValue": True,
                    },
                ],
            )
        },
        "/api/v1/settings": {
            "get": _op("Facility settings (staff)", {"200": _json(_ref("Settings"))}),
            "put": _op(
                "Change the retention (admin)",
                {
                    "200": _json(_ref("Settings")),
                    "400": _error("Invalid retention"),
                    "403": _error("Admins only"),
                },
                body=_body(_input(["retention"], retention=patterns.retention())),
            ),
        },
        "/api/v1/staff": {
            "get": _op(
                "Staff accounts (admin)",
                {
                    "200": _json(
                        _obj(
                            ["staff"],
                            staff={
                                "type": "array",
                                "items": _obj(
                                    ["username", "role", "created_at"],
                                    username=STR,
                                    role={"type": "string", "enum": ["admin", "staff"]},
                                    created_at=TIME,
                                ),
                            },
                        )
                    ),
                    "403": _error("Admins only"),
                },
            ),
            "post": _op(
                "Add a staff account (admin); a password is generated if none is given",
                {
                    "201": _json(
                        _obj(["username", "role"], username=STR, role=STR, password=STR), "Created"
                    ),
                    "400": _error("Invalid account"),
                    "403": _error("Admins only"),
                    "409": _error("Name taken"),
                },
                body=_body(
                    _input(
                        ["username"],
                        username=patterns.USERNAME,
                        password=patterns.PASSWORD,
                        role={"type": "string", "enum": ["admin", "staff"]},
                    )
                ),
            ),
        },
        "/api/v1/staff/{username}": {
            "delete": _op(
                "Remove a staff account (admin)",
                {
                    "204": NO_CONTENT,
                    "403": _error("Admins only"),
                    "404": _error("No such account"),
                    "409": _error("Cannot remove yourself"),
                },
                params=[
                    {
                        "name": "username",
                        "in": "path",
                        "required": True,
                        "schema": patterns.USERNAME,
                    }
                ],
            )
        },
        "/api/v1/password": {
            "post": _op(
                "Change your own password; ends your other sessions",
                {
                    "204": NO_CONTENT,
                    "400": _error("Malformed request, or the new password too short or long"),
                    "401": _error(
                        "Missing, invalid or expired token, or the current password is wrong"
                    ),
                },
                body=_body(
                    _input(
                        ["current_password", "new_password"],
                        current_password=STR,
                        new_password=patterns.PASSWORD,
                    )
                ),
            )
        },
        # -- quotas and full disk (issue 11)
        # -- backups (issue 11)
        # -- errors and faults (issue 11)
        # -- receipts (issue 12)
        # -- exports, reference, access log (issue 12)
        # -- notifications (issue 13)
        # -- unread, compose, list (issue 13)
        # -- accounts, quick replies, contact, throttling (issue 13)
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"medcell facility API ({config.facility})", "version": "1"},
        # Relative to where the document is served (…/api/v1/openapi.json): the facility's root,
        # which behind the gateway is /f/<slug>/. The paths below start with /api/v1 themselves.
        "servers": [{"url": "../.."}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _obj(["error"], error=_obj(["code", "message"], code=STR, message=STR)),
                "AttachmentInfo": _obj(
                    ["id", "filename", "size"],
                    id=STR,
                    filename=STR,
                    size={"type": "integer"},
                    content_type=STR,
                ),
                "Settings": _obj(
                    ["facility", "retention", "retention_seconds"],
                    facility=STR,
                    name=STR,
                    retention=STR,
                    retention_seconds={"type": "integer"},
                ),
            },
        },
    }

"""The OpenAPI 3 description of the facility API, served at /api/v1/openapi.json."""

from services.facility.api import patterns, usage
from services.facility.core import contact, quick_replies, uploads
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
    responses.setdefault("413", _error("The request body is over its size limit"))
    if body or params:
        # A value outside its schema, a text over its maxLength included, is a validation error.
        responses.setdefault("400", _error("A value outside the documented schema"))
    if any(p.get("in") == "path" for p in params or ()):
        # The gateway refuses these before the facility sees them (gateway/templates/maps.conf).
        refused = responses["400"]
        responses["400"] = {**refused, "description": f"{refused['description']}; {GATEWAY_400}"}
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


GATEWAY_400 = (
    "or, from the gateway, a path with control characters, an encoded '/', '\\' or '%', "
    "dot segments, or percent-encodings that are not UTF-8"
)
STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
NO_CONTENT = {"description": "Done"}
UPLOADS = uploads.ALLOWED_TEXT
DAMAGED = _error(
    "record_damaged: a record fails its integrity check (altered in the database outside "
    "medcell: moved, its author or time changed); nothing of it is shown as genuine"
)
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
    "export": "/api/v1/conversations/{conv_id}/export",
    "reference": "/api/v1/conversations/{conv_id}/reference",
    "access_log": "/api/v1/conversations/{conv_id}/access-log",
    "notifications": "/api/v1/conversations/{conv_id}/notifications",
    "link_mail": "/api/v1/conversations/{conv_id}/link-mail",
}
EMAIL = {
    "type": "string",
    "maxLength": 254,
    "pattern": r"^\s*[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]"
    r"(?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+\s*$",
}


def _email_body() -> dict:
    return {
        "type": "object",
        "required": ["email"],
        "additionalProperties": False,
        "properties": {"email": {**EMAIL, "nullable": True}},
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
        read={"type": "boolean", "description": "the side that did not write it has read it"},
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
            ("export", CONVERSATION_LINKS["export"], ("get",)),
            ("reference", CONVERSATION_LINKS["reference"], ("get", "put")),
            ("access_log", CONVERSATION_LINKS["access_log"], ("get",)),
            ("notifications", CONVERSATION_LINKS["notifications"], ("get", "put")),
            ("link_mail", CONVERSATION_LINKS["link_mail"], ("post",)),
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
                    "403": _error("Right password, but the account is deactivated"),
                    "429": _error(
                        "Too many failures for this account from this client (5 in 15 min), "
                        "or from this client over all accounts (30); Retry-After says how long"
                    ),
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
                                reference=reference_input(nullable=True),
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
                    "200": _json(
                        _obj(
                            ["deleted", "receipt"],
                            deleted={"type": "integer", "minimum": 0},
                            receipt=_ref("Receipt"),
                        ),
                        "Deleted; one receipt (reason facility_wipe) for the whole wipe",
                    ),
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
                "Delete the conversation completely, at once; answers its signed receipt",
                {
                    "200": _json(_obj(["receipt"], receipt=_ref("Receipt")), "Deleted"),
                    "404": not_found,
                },
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
                    "400": _error("Malformed request, or a body over its maxLength"),
                    "404": not_found,
                    "413": _error("Request body over its size limit, or the conversation is full"),
                },
                body=_body(_input(["body"], body=patterns.nonblank_text(config.max_body_chars))),
                params=[CONV_ID],
            ),
            "get": _op(
                "Messages, oldest first",
                {
                    "500": DAMAGED,
                    "200": _json(
                        _obj(
                            ["messages"],
                            messages={"type": "array", "items": message},
                            read_up_to={
                                "type": "string",
                                "nullable": True,
                                "description": "the newest message of the caller's side that "
                                "the other side has read",
                            },
                        ),
                        "The messages; fetching them marks them read for the caller",
                    ),
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
                    "400": _error("No file, a file without a name, or a body over maxLength"),
                    "404": not_found,
                    "413": _error(
                        f"File over {config.max_attachment_bytes} bytes, "
                        "or the conversation is full"
                    ),
                    "415": _error(
                        f"Only {uploads.ALLOWED_TEXT} can be attached, recognised by their "
                        "content; a declared type must be the one the content shows"
                    ),
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
                                    f"bytes, sent as a file part with a file name: {UPLOADS}; "
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
                params=[CONV_ID],
            )
        },
        "/api/v1/attachments/{att_id}": {
            "get": _op(
                "The file's bytes",
                {
                    "500": DAMAGED,
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
        **usage.openapi_paths(_error("Not an admin, or too many failed attempts")),
        # -- backups (issue 11)
        # -- errors and faults (issue 11)
        # -- receipts (issue 12)
        "/api/v1/receipt-key": {
            "get": _op(
                "The Ed25519 public key that signs this facility's deletion receipts",
                {
                    "200": _json(
                        {
                            **_obj(
                                ["algorithm", "public_key"],
                                algorithm={"type": "string", "enum": ["Ed25519"]},
                                public_key={
                                    "type": "string",
                                    "description": "standard base64 of the 32-byte key",
                                    "pattern": "^[A-Za-z0-9+/]{43}=$",
                                },
                            ),
                            "additionalProperties": False,
                        }
                    )
                },
                auth=False,
            )
        },
        "/api/v1/receipts/{receipt_id}": {
            "get": _op(
                "One signed deletion receipt; anyone with its (random) id may fetch it",
                {
                    "200": _json(_ref("Receipt")),
                    "400": _error("'download' with a value, or more than once"),
                    "404": _error("No such receipt (or it is past its keeping time)"),
                    "429": _error("Too many unknown ids from this client"),
                },
                auth=False,
                params=[
                    {
                        "name": "receipt_id",
                        "in": "path",
                        "required": True,
                        "schema": patterns.record_id("receipt"),
                    },
                    {
                        "name": "download",
                        "in": "query",
                        "required": False,
                        "description": "present, without a value (?download): sent as a file "
                        "download (receipt-<id>.json)",
                        "schema": {"type": "string", "enum": [""]},
                        "allowEmptyValue": True,
                    },
                ],
            )
        },
        "/api/v1/receipts": {
            "get": _op(
                "The facility's deletion receipts, newest first (staff)",
                {
                    "200": _json(
                        _obj(["receipts"], receipts={"type": "array", "items": _ref("Receipt")})
                    ),
                    "400": _error("Bad 'limit'"),
                    "403": _error("Staff only"),
                },
                params=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "at most this many (default 100)",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
            )
        },
        # -- exports, reference, access log (issue 12)
        **records_paths(not_found),
        # -- notifications (issue 13)
        "/api/v1/notifications": {
            "get": _op(
                "Your own e-mail notification (staff): whether mail is set up, your address",
                {"200": _json(_ref("StaffNotification")), "403": _error("Staff only")},
            ),
            "put": _op(
                "Opt in with an address, or out with null (staff)",
                {
                    "200": _json(_ref("StaffNotification")),
                    "400": _error("Not one plain e-mail address, or an unknown field"),
                    "403": _error("Staff only"),
                    "409": _error("E-mail is not set up for this installation"),
                },
                body=_body(_email_body()),
            ),
        },
        "/api/v1/conversations/{conv_id}/notifications": {
            "get": _op(
                "Whether the conversation's patient is told of answers by e-mail",
                {"200": _json(_ref("PatientNotification")), "404": not_found},
                params=[CONV_ID],
            ),
            "put": _op(
                "The patient's address for 'your practice has answered', or null (patient only;"
                " sealed, deleted with the conversation)",
                {
                    "200": _json(_ref("PatientNotification")),
                    "400": _error("Not one plain e-mail address, or an unknown field"),
                    "403": _error("Only the conversation's patient"),
                    "404": not_found,
                    "409": _error("E-mail is not set up for this installation"),
                },
                body=_body(_email_body()),
                params=[CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/link-mail": {
            "post": _op(
                "Mail the patient link of a PIN-protected conversation once (staff; the address"
                " is not kept)",
                {
                    "202": _json(
                        _obj(["queued"], queued={"type": "boolean"}), "Queued for the relay"
                    ),
                    "400": _error("Bad address, unknown field, or not the current link"),
                    "403": _error("Staff only"),
                    "404": not_found,
                    "409": _error("The conversation has no PIN, or e-mail is not set up"),
                },
                body=_body(
                    {
                        "type": "object",
                        "required": ["email", "patient_token"],
                        "additionalProperties": False,
                        "properties": {"email": EMAIL, "patient_token": STR},
                    }
                ),
                params=[CONV_ID],
            )
        },
        # -- unread, compose, list (issue 13)
        "/api/v1/unread": {
            "get": _op(
                "Unread patient messages for this staff account, per conversation id",
                {
                    "200": _json(
                        _obj(
                            ["conversations", "total"],
                            conversations={
                                "type": "object",
                                "additionalProperties": {"type": "integer", "minimum": 1},
                            },
                            total={"type": "integer", "minimum": 0},
                        )
                    ),
                    "403": _error("Staff only"),
                },
            )
        },
        # -- accounts, quick replies, contact, throttling (issue 13)
        **_account_paths(),
        **_quick_reply_paths(config),
        **_contact_paths(),
    }
    usage.document_storage_full(paths)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"medcell facility API ({config.facility})",
            "version": "1",
            "description": "A value outside its schema (a text over its maxLength included) is "
            "answered 400; 413 means only a request body over its size limit (or a full "
            "conversation); 415 an attachment that is not an allowed type.",
        },
        # Relative to where the document is served (…/api/v1/openapi.json): the facility's root,
        # the root of its own origin. The paths below start with /api/v1 themselves.
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
                "Receipt": {
                    **_obj(
                        [
                            "receipt_id",
                            "facility",
                            "deleted_at",
                            "reason",
                            "counts",
                            "verified",
                            "signature",
                        ],
                        receipt_id={"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                        facility=STR,
                        deleted_at=TIME,
                        reason={
                            "type": "string",
                            "enum": ["patient", "staff", "expiry", "facility_wipe"],
                        },
                        counts={
                            **_obj(
                                ["messages", "attachments", "record_keys"],
                                messages={"type": "integer", "minimum": 0},
                                attachments={"type": "integer", "minimum": 0},
                                record_keys={"type": "integer", "minimum": 0},
                            ),
                            "additionalProperties": False,
                        },
                        verified={
                            "type": "boolean",
                            "description": "the delete committed, the WAL checkpoint returned "
                            "(0, 0, 0) and no row of the conversation is left in any table",
                        },
                        signature={
                            "type": "string",
                            "description": "Ed25519, standard base64, over the canonical JSON "
                            "of all other fields (keys sorted, separators ',' and ':', UTF-8)",
                        },
                    ),
                    "additionalProperties": False,
                },
                **records_schemas(),
                "StaffNotification": _obj(
                    ["enabled", "email"],
                    enabled={"type": "boolean"},
                    email={"type": "string", "nullable": True},
                ),
                "PatientNotification": _obj(
                    ["enabled", "email_set"],
                    enabled={"type": "boolean"},
                    email_set={"type": "boolean"},
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


# -- exports, reference, access log (issue 12) ----------------------------------------------


def records_paths(not_found: dict) -> dict:
    """Patient reference, exports and the patient's access log."""
    reference = _json(_obj(["reference"], reference=_ref("Reference")))
    return {
        "/api/v1/conversations/{conv_id}/export": {
            "get": _op(
                "Export the conversation for the patient record (staff); logged for the patient",
                {
                    "500": DAMAGED,
                    "200": {
                        "description": "A download: a printable PDF, or a FHIR R4 Bundle of "
                        "one Communication per message with attachments inline",
                        "headers": {"Content-Disposition": {"schema": STR}},
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                            # Any JSON value to a generic validator: it is FHIR's own schema.
                            "application/fhir+json": {
                                "schema": {"description": "a FHIR R4 Bundle resource (JSON)"}
                            },
                        },
                    },
                    "400": _error("Unknown format or language"),
                    "403": _error("Staff only"),
                    "404": not_found,
                    "413": _error(
                        "export_too_large: more text than one PDF holds (1,000,000 characters); "
                        "FHIR has no such limit"
                    ),
                },
                params=[
                    CONV_ID,
                    {
                        "name": "format",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "enum": ["pdf", "fhir"]},
                    },
                    {
                        "name": "lang",
                        "in": "query",
                        "required": False,
                        "description": "language of the PDF and of display texts (default: "
                        "Accept-Language, else de)",
                        "schema": {"type": "string", "enum": ["de", "en"]},
                    },
                ],
            )
        },
        "/api/v1/conversations/{conv_id}/reference": {
            "get": _op(
                "The conversation's patient reference (staff); null if none",
                {"200": reference, "403": _error("Staff only"), "404": not_found},
                params=[CONV_ID],
            ),
            "put": _op(
                "Replace the patient reference (staff); empty fields remove it",
                {
                    "200": reference,
                    "400": _error("Invalid reference"),
                    "403": _error("Staff only"),
                    "404": not_found,
                },
                body=_body(reference_input()),
                params=[CONV_ID],
            ),
        },
        "/api/v1/conversations/{conv_id}/access-log": {
            "get": _op(
                "Which staff account opened, downloaded or exported what, newest first "
                "(staff, and the conversation's own patient)",
                {
                    "500": DAMAGED,
                    "200": _json(
                        _obj(["entries"], entries={"type": "array", "items": _ref("Access")})
                    ),
                    "404": not_found,
                },
                params=[CONV_ID],
            )
        },
    }


def _account_paths() -> dict:
    """Deactivate, reactivate and reset the password of another staff account (admin)."""
    username = {"name": "username", "in": "path", "required": True, "schema": patterns.USERNAME}
    refusals = {
        "403": _error("Admins only"),
        "404": _error("No such account"),
        "409": _error("Not for your own account"),
    }
    return {
        "/api/v1/staff/{username}/deactivate": {
            "post": _op(
                "Deactivate an account: no login, its sessions end at once (admin)",
                {"204": NO_CONTENT, **refusals},
                params=[username],
            )
        },
        "/api/v1/staff/{username}/reactivate": {
            "post": _op(
                "Let a deactivated account log in again (admin)",
                {"204": NO_CONTENT, **refusals},
                params=[username],
            )
        },
        "/api/v1/staff/{username}/password-reset": {
            "post": _op(
                "A new generated password for the account, shown only now; its sessions end",
                {
                    "200": _json(_obj(["username", "password"], username=STR, password=STR)),
                    **refusals,
                },
                params=[username],
            )
        },
    }


def _quick_reply_paths(config: Config) -> dict:
    """The facility's text templates: staff read them, admins add and remove them."""
    reply = _obj(["id", "label", "body"], id={"type": "integer"}, label=STR, body=STR)
    new = {
        **_obj(
            ["label", "body"],
            label=patterns.nonblank_text(quick_replies.MAX_LABEL),
            body=patterns.nonblank_text(config.max_body_chars),
        ),
        "additionalProperties": False,
    }
    return {
        "/api/v1/quick-replies": {
            "get": _op(
                "The quick replies (staff)",
                {
                    "200": _json(
                        _obj(["quick_replies"], quick_replies={"type": "array", "items": reply})
                    )
                },
            ),
            "post": _op(
                "Add a quick reply (admin; at most 50)",
                {
                    "201": _json(reply, "Created"),
                    "400": _error("Missing, empty or unknown fields"),
                    "403": _error("Admins only"),
                    "409": _error("There are 50 already"),
                },
                body=_body(new),
            ),
        },
        "/api/v1/quick-replies/{reply_id}": {
            "delete": _op(
                "Remove a quick reply (admin)",
                {"204": NO_CONTENT, "403": _error("Admins only"), "404": _error("No such reply")},
                params=[
                    {
                        "name": "reply_id",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "pattern": "^[0-9]{1,18}$",
                            "description": "the quick reply's number",
                        },
                    }
                ],
            )
        },
    }


def reference_input(nullable: bool = False) -> dict:
    """The patient reference staff send (null in a new conversation: none)."""
    fields = {
        "name": {"type": "string", "maxLength": 200},
        "birth_date": {
            "type": "string",
            "anyOf": [
                {"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                {"maxLength": 0},
            ],
            "description": "a calendar date, e.g. 1984-03-07 (empty: none)",
        },
        "number": {"type": "string", "maxLength": 64, "description": "the practice's number"},
    }
    schema = {
        "type": "object",
        "description": "optional patient reference; one line each, surrounding spaces trimmed, "
        "empty fields ignored",
        "properties": {
            name: {
                **field,
                "nullable": True,
                # one line of text: no control characters (a date has its own rule)
                **({} if "anyOf" in field else {"pattern": "^[^\\x00-\\x1f\\x7f]*$"}),
            }
            for name, field in fields.items()
        },
        "additionalProperties": False,
    }
    return {**schema, "nullable": True} if nullable else schema


def records_schemas() -> dict:
    return {
        "Reference": {
            "type": "object",
            "nullable": True,
            "properties": {name: STR for name in ("name", "birth_date", "number")},
            "additionalProperties": False,
        },
        "Access": _obj(
            ["who", "action", "item", "at"],
            who={"type": "string", "description": "the staff account"},
            action={"type": "string", "enum": ["open", "download", "export_pdf", "export_fhir"]},
            item={"type": "string", "description": "the file, for a download; else empty"},
            at=TIME,
        ),
    }


def _contact_paths() -> dict:
    """The facility's phone and opening hours, shown to patients on pages where they are stuck."""
    shown = _obj(["phone", "hours"], phone=STR, hours=STR)
    change = {
        "type": "object",
        "properties": {
            "phone": {"type": "string", "pattern": "^([0-9+()/. -]{3,40})?$"},
            "hours": patterns.text(contact.MAX_HOURS),
        },
        "additionalProperties": False,
    }
    return {
        "/api/v1/contact": {
            "get": _op("The facility's contact for patients", {"200": _json(shown)}, auth=False),
            "put": _op(
                "Set the contact (admin); an empty string removes a field",
                {
                    "200": _json(shown),
                    "400": _error("Invalid phone or hours, or unknown fields"),
                    "403": _error("Admins only"),
                },
                body=_body(change),
            ),
        }
    }

"""Staff accounts over the API (admin): list, add, remove; display names (admin or the owner)."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.api.validation import json_body
from services.facility.core import accounts as auth
from services.facility.core import passwords
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import (
    conn,
    iso,
    now,
)

bp = Blueprint("staff_api", __name__)


@bp.get("/api/v1/staff")
@require(admin=True)
def list_staff():
    return jsonify(
        staff=[{**s, "created_at": iso(s["created_at"])} for s in auth.list_staff(conn())]
    )


@bp.post("/api/v1/staff")
@require(admin=True)
def create_staff():
    body = json_body()
    generated = "password" not in body
    password = passwords.generate_password() if generated else body["password"]
    username, role = body.get("username"), body.get("role", "staff")
    auth.create_staff(
        conn(), auth.check_username(username), password, role, now(), body.get("display_name")
    )
    names = {s["username"]: s["display_name"] for s in auth.list_staff(conn())}
    result = {"username": username, "role": role, "display_name": names[username]}
    if generated:
        result["password"] = password
    return jsonify(result), 201


@bp.delete("/api/v1/staff/<username>")
@require(admin=True)
def delete_staff(username: str):
    auth.remove_staff(conn(), username, g.principal)
    return "", 204


@bp.put("/api/v1/staff/<username>/display-name")
@require()
def set_display_name(username: str):
    body = json_body()
    name = auth.set_display_name(conn(), username, body["display_name"], g.principal)
    return jsonify(username=username, display_name=name)


# -- the OpenAPI document -----------------------------------------------------------------


def openapi_paths(_config: Config) -> dict:
    """This module's part of the OpenAPI document (api/openapi.py puts them together)."""
    return {
        "/api/v1/staff": {
            "get": doc.op(
                "Staff accounts (admin)",
                {
                    "200": doc.json(
                        doc.obj(
                            ["staff"],
                            staff={
                                "type": "array",
                                "items": doc.obj(
                                    ["username", "display_name", "role", "created_at"],
                                    username=doc.STR,
                                    display_name={
                                        "type": "string",
                                        "description": "what messages show (the username "
                                        "until one is set)",
                                    },
                                    role={"type": "string", "enum": ["admin", "staff"]},
                                    created_at=doc.TIME,
                                    active={"type": "boolean"},
                                ),
                            },
                        )
                    ),
                    "403": doc.error("Admins only"),
                },
            ),
            "post": doc.op(
                "Add a staff account (admin); a password is generated if none is given",
                {
                    "201": doc.json(
                        doc.obj(
                            ["username", "role", "display_name"],
                            username=doc.STR,
                            role=doc.STR,
                            display_name=doc.STR,
                            password=doc.STR,
                        ),
                        "Created",
                    ),
                    "400": doc.error("Invalid account"),
                    "403": doc.error("Admins only"),
                    "409": doc.error("Name taken"),
                },
                body=doc.body(
                    doc.input_object(
                        ["username"],
                        username=patterns.USERNAME,
                        password=patterns.PASSWORD,
                        role={"type": "string", "enum": ["admin", "staff"]},
                        display_name=patterns.DISPLAY_NAME,
                    )
                ),
            ),
        },
        "/api/v1/staff/{username}": {
            "delete": doc.op(
                "Remove a staff account (admin)",
                {
                    "204": doc.NO_CONTENT,
                    "403": doc.error("Admins only"),
                    "404": doc.error("No such account"),
                    "409": doc.error("Cannot remove yourself"),
                },
                params=[USERNAME],
            )
        },
        "/api/v1/staff/{username}/display-name": {
            "put": doc.op(
                "Set the name an account's messages show (the account itself, or an admin)",
                {
                    "200": doc.json(
                        doc.obj(
                            ["username", "display_name"], username=doc.STR, display_name=doc.STR
                        )
                    ),
                    "403": doc.error("Another account's name: admins only"),
                    "404": doc.error("No such account"),
                },
                body=doc.body(
                    doc.input_object(["display_name"], display_name=patterns.DISPLAY_NAME)
                ),
                params=[USERNAME],
            )
        },
    }


USERNAME = {"name": "username", "in": "path", "required": True, "schema": patterns.USERNAME}

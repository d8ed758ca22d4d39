"""Admins manage other staff accounts: deactivate, reactivate, reset a forgotten password."""

from flask import Blueprint, g, jsonify

from services.facility.api import document as doc
from services.facility.api import patterns
from services.facility.core import accounts
from services.facility.core.config import Config
from services.facility.http.auth import require
from services.facility.http.context import conn

bp = Blueprint("api_accounts", __name__)


@bp.post("/api/v1/staff/<username>/deactivate")
@require(admin=True)
def deactivate(username: str):
    accounts.set_active(conn(), username, False, g.principal)
    return "", 204


@bp.post("/api/v1/staff/<username>/reactivate")
@require(admin=True)
def reactivate(username: str):
    accounts.set_active(conn(), username, True, g.principal)
    return "", 204


@bp.post("/api/v1/staff/<username>/password-reset")
@require(admin=True)
def reset_password(username: str):
    password = accounts.reset_password(conn(), username, g.principal)
    return jsonify(username=username, password=password)


def openapi_paths(_config: Config) -> dict:
    """Deactivate, reactivate and reset the password of another staff account (admin)."""
    username = {"name": "username", "in": "path", "required": True, "schema": patterns.USERNAME}
    refusals = {
        "403": doc.error("Admins only"),
        "404": doc.error("No such account"),
        "409": doc.error("Not for your own account"),
    }
    return {
        "/api/v1/staff/{username}/deactivate": {
            "post": doc.op(
                "Deactivate an account: no login, its sessions end at once (admin)",
                {"204": doc.NO_CONTENT, **refusals},
                params=[username],
            )
        },
        "/api/v1/staff/{username}/reactivate": {
            "post": doc.op(
                "Let a deactivated account log in again (admin)",
                {"204": doc.NO_CONTENT, **refusals},
                params=[username],
            )
        },
        "/api/v1/staff/{username}/password-reset": {
            "post": doc.op(
                "A new generated password for the account, shown only now; its sessions end",
                {
                    "200": doc.json(
                        doc.obj(["username", "password"], username=doc.STR, password=doc.STR)
                    ),
                    **refusals,
                },
                params=[username],
            )
        },
    }

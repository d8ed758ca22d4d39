"""Admins manage other staff accounts: deactivate, reactivate, reset a forgotten password."""

from flask import Blueprint, g, jsonify

from services.facility.core import accounts
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

""" "Stay signed in on this device" for patients: the choice on their page, and signing it out."""

from flask import Blueprint, g, redirect, request, url_for

from services.facility.core import devices
from services.facility.http.context import conn, now
from services.facility.pages import common as web
from services.facility.pages.guards import DEVICE_COOKIE, patient_page

bp = Blueprint("device", __name__)


@bp.app_context_processor
def _values() -> dict:
    return {"patient_device": device_state}


def device_state() -> dict:
    """For _patient_device.html: does this device stay signed in to this conversation, until?"""
    known = devices.device(conn(), request.cookies.get(DEVICE_COOKIE), now())
    mine = known is not None and known.conversation_id == g.get("conversation_id")
    return {"on": mine, "until": known.expires_at if mine else None}


@bp.post("/patient/device")
@patient_page
def choose():
    response = redirect(f"{url_for('patient.conversation')}#device-h", 303)
    devices.forget(conn(), request.cookies.get(DEVICE_COOKIE))  # one record per device at most
    if request.form.get("action") == "on":
        token, _ = devices.remember(conn(), g.conversation_id, now())
        web.set_cookie(response, DEVICE_COOKIE, token, devices.DEVICE_SECONDS)
    else:
        web.clear_cookie(response, DEVICE_COOKIE)
    return response

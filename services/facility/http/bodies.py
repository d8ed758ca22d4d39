"""How much of a request body the app will hold, before anyone has looked at who sent it.

Uploads are parsed into memory (never into a temporary file in plaintext), so body size is memory.
Only the upload routes (and the pages' compose forms) take large bodies, and each process parses
one upload at a time; every other request is refused above 256 KiB before its body is read.
A facility container has 256 MiB for two workers, one argon2id hash (64 MiB) and one upload per
worker (24 MiB each).
"""

import threading

from flask import Flask, g, request

from services.facility.core.errors import TooManyRequests

SMALL_BODY = 256 * 1024
# The pages' compose forms (text and an optional file in one form) post to the message routes.
UPLOAD_ENDPOINTS = frozenset(
    {
        "conversations_api.post_attachment",
        "patient.message",
        "staff.message",
    }
)
UPLOAD_WAIT_SECONDS = 20
_UPLOADS = threading.Semaphore(1)


def init_app(app: Flask) -> None:
    @app.before_request
    def _limit_body() -> None:
        small = request.content_length is not None and request.content_length <= SMALL_BODY
        if request.endpoint not in UPLOAD_ENDPOINTS or small:
            # A small body (a text reply, a small photo) needs no upload slot: the limit holds it.
            request.max_content_length = SMALL_BODY
            return
        if not _UPLOADS.acquire(timeout=UPLOAD_WAIT_SECONDS):
            raise TooManyRequests("another upload is in progress; try again shortly", 5)
        g.upload_slot = True

    @app.teardown_request
    def _free_upload_slot(_error: BaseException | None) -> None:
        if g.pop("upload_slot", False):
            _UPLOADS.release()

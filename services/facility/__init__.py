"""The facility app: one facility's "virtual server" — API, pages, store, keys, deletion job."""

import logging
import time
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.facility.api import openapi
from services.facility.core import (
    Facility,
    contact,
    conversations,
    crypto,
    open_facility,
    opening,
    quota,
    retention,
)
from services.facility.core.config import Config
from services.facility.http import auth, bodies, context, errors, logs, outbox, routing
from services.facility.http.status import ActivityMiddleware
from services.facility.pages import (
    accounts,
    admin,
    auto_reply,
    common,
    device,
    intake,
    links,
    patient,
    practice,
    security,
    signin,
    staff,
)
from services.facility.pages import notify as notify_pages
from services.facility.pages import records as page_records

log = logging.getLogger("medcell.facility")


def create_app(test_config: Mapping | None = None, env: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (or test_config, which may hold a Config and a clock)."""
    test_config = dict(test_config or {})
    config: Config = test_config.pop("MEDCELL", None) or Config.from_env(env)
    clock = test_config.pop("CLOCK", None) or (lambda: time.time_ns() // 1000)
    crypto.check_available()

    app = Flask(__name__, template_folder="pages/templates", static_folder="pages/static")
    app.request_class = context.MemoryRequest
    app.url_rule_class = routing.LazyBuildRule  # url_for's builders made on first use
    app.config.update(MAX_CONTENT_LENGTH=config.max_attachment_bytes + 1024 * 1024)
    app.config.update(test_config)
    # Only the gateway can reach a facility container, and it sets these headers itself. Not the
    # host or a prefix: the facility lives at the root of its own origin, and absolute links come
    # from MEDCELL_PUBLIC_URL alone.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0, x_prefix=0)
    facility = open_facility(config, clock)
    # Outermost, so it sees the raw headers and every byte of every response body.
    app.wsgi_app = ActivityMiddleware(
        app.wsgi_app,
        facility.activity,
        lambda: _status_report(facility),
        outbox.endpoints(facility),
    )

    context.init_app(app, facility)
    logs.init_app(app)
    bodies.init_app(app)
    auth.init_app(app)
    common.init_app(app)
    openapi.init_api(app)
    pages = (
        patient.bp,
        staff.bp,
        admin.bp,
        page_records.bp,
        accounts.bp,
        practice.bp,
        auto_reply.bp,
        notify_pages.bp,
        signin.bp,
        security.bp,
        links.bp,
        device.bp,
        intake.bp,
    )
    for blueprint in pages:
        app.register_blueprint(blueprint)
    # Errors on the pages' routes are a page in the reader's language; elsewhere JSON.
    errors.init_app(app, {bp.name for bp in pages}, common.error_page)

    if config.scheduler:
        start_jobs(app)
    # Each request thread opens its own connection on first use.
    facility.store.close()
    log.info("started", extra={"fields": {"facility": config.facility}})
    return app


def start_jobs(app: Flask) -> None:
    """Start the deletion job in this process, once (the server's one process serves every
    request, so each request that moves a deadline wakes it in-process)."""
    sweeper = context.facility_of(app).sweeper
    if sweeper is None or sweeper.started:
        return
    sweeper.start()


def _status_report(facility: Facility) -> dict:
    """The facility's own part of /_medcell/status: busy, the next deadline, when it opens."""
    conn = facility.store.conn()
    sweeper = facility.sweeper
    deadline = retention.next_deadline(
        conn,
        facility.conversations,
        facility.keyring,
        facility.config.key_rotation_seconds,
    )
    return {
        "busy": bool(sweeper and sweeper.busy) or facility.keyring.busy(),
        "next_deadline": None if deadline is None else deadline / 1e6,
        # Mails waiting for the supervisor's relay; it drains them before the facility sleeps.
        "outbox": facility.notifier.pending(conn),
        # Starts of its opening hours (minutes after Monday 00:00, local time): the supervisor
        # wakes it shortly before the practice opens.
        "opens": opening.opening_starts(contact.get(conn)["hours"]),
        # Conversations deleted, by reason, and how late the expired ones went: running totals
        # (the supervisor's medcell_deletion_lag_seconds and medcell_deletions_total).
        "deletions": conversations.deletion_report(conn),
        # Bytes of its database in use against its quota (medcell_storage_used_bytes).
        "storage": {
            "used_bytes": quota.facility_used(conn),
            "quota_bytes": quota.quotas(conn).facility,
        },
    }

"""The facility app: one facility's "virtual server" — API, pages, store, keys, deletion job."""

import io
import logging
import time
from collections.abc import Mapping

from flask import Flask, Request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, bodies, crypto, logs
from .config import Config
from .conversations import Conversations
from .keys import Keyring
from .retention import Sweeper
from .settings import retention_seconds
from .store import Store

log = logging.getLogger("medcell.facility")


class MemoryRequest(Request):
    """Keep uploads in memory: werkzeug would spool large ones to a temp file in plaintext."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return io.BytesIO()


def create_app(test_config: Mapping | None = None, env: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (or test_config, which may hold a Config and a clock)."""
    test_config = dict(test_config or {})
    config: Config = test_config.pop("MEDCELL", None) or Config.from_env(env)
    clock = test_config.pop("CLOCK", None) or (lambda: time.time_ns() // 1000)
    crypto.check_available()

    app = Flask(__name__)
    app.request_class = MemoryRequest
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_attachment_bytes + 1024 * 1024,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.config.update(test_config)
    # Only the gateway can reach a facility container, and it sets these headers itself.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    store = Store(config.database)
    store.migrate()
    auth.use_hash_lock(config.data_dir / "argon2.lock")
    keyring = Keyring(config.key_dir, config.facility, clock)
    keyring.ensure(store.conn())
    conversations = Conversations(
        keyring=keyring,
        facility=config.facility,
        clock=clock,
        retention=lambda conn: retention_seconds(conn, config.retention),
        max_body_chars=config.max_body_chars,
        max_title_chars=config.max_title_chars,
        max_attachment_bytes=config.max_attachment_bytes,
    )
    app.extensions["medcell"] = {
        "config": config,
        "store": store,
        "keyring": keyring,
        "conversations": conversations,
        "clock": clock,
    }

    logs.init_app(app)
    bodies.init_app(app)
    from . import api, errors_http, web

    errors_http.init_app(app)
    app.register_blueprint(api.bp)
    web.init_app(app)

    if config.scheduler:
        sweeper = Sweeper(
            config.database,
            conversations,
            keyring,
            config.key_rotation_seconds,
            config.sweep_seconds,
        )
        sweeper.start()
        app.extensions["medcell"]["sweeper"] = sweeper
    log.info("started", extra={"fields": {"facility": config.facility}})
    return app

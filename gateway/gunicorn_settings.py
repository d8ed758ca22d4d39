"""gunicorn settings for the gateway's activator (`python -m gateway serve` starts it with
`--config python:gateway.gunicorn_settings`, so an installed package needs no source tree).

The activator only serves requests for sleeping facilities, handed over by nginx on a unix socket
inside the container: one process (wakes are coalesced in memory, so they must share it), many
threads, because each held request waits for a wake and then for a facility's answer.
"""

import os

_state = os.environ.get("MEDCELL_GATEWAY_STATE_DIR", "/tmp/medcell-gateway")

wsgi_app = "gateway.activator:create_app()"
bind = [f"unix:{_state}/activator.sock"]
umask = 0o077  # the socket is nginx's alone (same user in the image)
worker_class = "gthread"
workers = 1
# An opening-time storm holds one thread per sleeping facility asked for; the container's pids
# limit (256) must still leave room for nginx and the control plane.
threads = int(os.environ.get("MEDCELL_ACTIVATOR_THREADS") or 128)
keepalive = 5
# Held requests wait for the wake plus the facility's answer; nginx's own timeout rules.
timeout = 120
graceful_timeout = 20

# gunicorn's access lines would carry request paths; its error log drops request data.
accesslog = None
errorlog = "-"
loglevel = "warning"
logger_class = "medcell_common.gunicorn_log.ServerLog"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "medcell_common.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

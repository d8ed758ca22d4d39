"""Gunicorn settings for a facility app; the same file runs it in a container and on a host."""

import os

bind = os.environ.get("MEDCELL_BIND", "127.0.0.1:8000")
# Two processes with a few threads each: enough to keep both cores busy while SQLite serialises
# writers, and small enough for the facility's memory budget.
workers = int(os.environ.get("MEDCELL_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("MEDCELL_THREADS", "4"))
keepalive = 75
timeout = 60
graceful_timeout = 20
# Request lines are logged by the app by route template; gunicorn's access log would print raw
# paths, which may hold the secret part of a patient link.
accesslog = None
logger_class = "services.facility.serverlog.ServerLog"  # keeps URIs out of gunicorn's errors
errorlog = "-"
loglevel = "info"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

# Gunicorn's own messages as JSON lines too, so an operator's log pipeline sees one format.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "services.facility.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

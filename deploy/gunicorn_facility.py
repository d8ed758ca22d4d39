"""Gunicorn settings for a facility app; the same file runs it in a container and on a host."""

import os

# In the image: a unix socket in /run/medcell, a directory the provisioner bind-mounts from the host
# so that the gateway's nginx (another uid) can reach it; the container itself has no network.
bind = os.environ.get("MEDCELL_BIND", "127.0.0.1:8000")
# The socket file is made with this umask: 0666, connectable by any uid that may enter the
# directory. Who may enter it is the directory's mode (0711), set by the provisioner.
umask = 0o111
# One process with threads: an idle facility must cost little memory, requests to one facility are
# light, and SQLite serialises writers anyway. One process also lets a request that moves a
# deadline wake the deletion job in-process (services/facility/core/retention.py).
workers = int(os.environ.get("MEDCELL_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("MEDCELL_THREADS", "8"))
# Build the app once in the master, so the worker shares its pages instead of importing everything
# again; the deletion job, a thread, is started in the worker (post_worker_init below).
preload_app = True
raw_env = ["MEDCELL_JOBS_AFTER_FORK=1"]
keepalive = 75
timeout = 60
graceful_timeout = 20
# Request lines are logged by the app by route template; gunicorn's access log would print raw
# paths, which may hold the secret part of a patient link.
accesslog = None
logger_class = "medcell_common.gunicorn_log.ServerLog"  # keeps URIs out of gunicorn's errors
errorlog = "-"
loglevel = "info"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

# Gunicorn's own messages as JSON lines too, so an operator's log pipeline sees one format.
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
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


def pre_fork(server, worker):
    if server.cfg.preload_app:
        from services.facility.preload import before_fork

        before_fork(server.app.wsgi())


def post_worker_init(worker):
    from services.facility import start_jobs

    start_jobs(worker.wsgi, worker.cfg.workers)

"""The facility's server before it became one waitress process: gunicorn's arbiter and one
threaded worker. Kept only as the baseline that bench/process.py measures side by side with
`python -m services`; nothing else starts a facility this way.

`python -m gunicorn -c bench/gunicorn_facility.py 'services.facility:create_app()'`
"""

import os

bind = os.environ.get("MEDCELL_BIND", "127.0.0.1:8000")
umask = 0o111
workers = 1
worker_class = "gthread"
threads = 8
# Built in the worker: a preloaded app is dirtied by the worker right after the fork (~10 MiB),
# so preloading cost more than it saved (docs/figures.md).
preload_app = False
keepalive = 75
timeout = 60
graceful_timeout = 20
accesslog = None
logger_class = "medcell_common.gunicorn_log.ServerLog"
errorlog = "-"
loglevel = "warning"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True

"""gunicorn settings for the medcell gateway (`python -m gateway serve` passes bind and TLS files).

TLS to the standard of online banking: TLS 1.2 and 1.3 only; with 1.2 only ECDHE key exchange
(forward secrecy) with AEAD ciphers (AES-GCM, ChaCha20-Poly1305), in the server's order of
preference. TLS 1.3's suites are all AEAD with forward secrecy already.
"""

import os
import ssl

_config_dir = os.environ.get("MEDCELL_GATEWAY_CONFIG", "/etc/medcell-gateway")

wsgi_app = "gateway:create_app()"
bind = ["0.0.0.0:8443"]
certfile = os.path.join(_config_dir, "tls", "cert.pem")
keyfile = os.path.join(_config_dir, "tls", "key.pem")


def _usable_cpus() -> int:
    """CPUs this process may really use: the machine's, capped by a container's CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            with open(path) as f:
                fields = f.read().split()
        except OSError:
            continue
        if path.endswith("cpu.max") and fields[0] != "max":
            cpus = min(cpus, max(1, -(-int(fields[0]) // int(fields[1]))))
        elif path.endswith("cfs_quota_us") and int(fields[0]) > 0:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                cpus = min(cpus, max(1, -(-int(fields[0]) // int(f.read()))))
        break
    return cpus


# One process per usable core (2 on this project's machines, 1 in a container limited to one CPU:
# more processes than the quota allows only get throttled, which shows as latency spikes). Each has
# enough threads for many keep-alive clients and a few long attachment streams at once; proxying
# waits on sockets most of the time, and TLS crypto releases the GIL.
worker_class = "gthread"
# At most four by default: the container's memory and process limits are sized for that many.
workers = int(os.environ.get("MEDCELL_GATEWAY_WORKERS") or min(_usable_cpus(), 4))
threads = int(os.environ.get("MEDCELL_GATEWAY_THREADS") or 16)
keepalive = 30  # seconds an idle client connection stays open: saves TLS handshakes
timeout = 60
graceful_timeout = 20

# The gateway logs its own access lines (JSON, no paths); gunicorn's would carry raw request paths,
# and at debug level its parser errors quote request lines too.
accesslog = None
errorlog = "-"
loglevel = "warning"
logger_class = "gateway.serverlog.ServerLog"  # also keeps request lines out of its warnings
# gunicorn's own lines as JSON too, so the gateway's log is one format for an operator's pipeline.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "gateway.accesslog.JsonLineFormatter"}},
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

# The gateway is the front end: it trusts proxy headers from no one (it sets X-Forwarded-* itself),
# so nothing a client sends can change the scheme or path gunicorn reports.
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""
# The control socket would need a writable home directory; the container's root is read-only.
control_socket_disable = True
# Heartbeat files on tmpfs: on a disk they can stall workers, and the root filesystem is read-only.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1:!SHA256:!SHA384"
_context: ssl.SSLContext | None = None


def ssl_context(conf, default_ssl_context_factory):
    """Harden gunicorn's context; build it once, not per connection (also lets sessions resume)."""
    global _context
    if _context is None:
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        context.set_ciphers(_TLS12_CIPHERS)
        context.options |= (
            ssl.OP_CIPHER_SERVER_PREFERENCE
            | ssl.OP_NO_COMPRESSION
            | ssl.OP_NO_RENEGOTIATION
            | ssl.OP_SINGLE_ECDH_USE
        )
        _context = context
    return _context

"""Gateway settings: defaults in code, overridden from the environment in exactly one place."""

import ipaddress
import os
from collections.abc import Mapping

from medcell_common.interfaces import GATEWAY_PEER_PORT
from medcell_common.rules import parse_duration

from .errors import ConfigError

MIB = 1024 * 1024

DEFAULTS = {
    "GATEWAY_CONFIG_DIR": "/etc/medcell-gateway",  # routes.json and tls/ (read-only)
    "RUN_DIR": "/run/medcell",  # facilities/<slug>/app.sock, supervisor/wake.sock, gateway/
    "STATE_DIR": "/tmp/medcell-gateway",  # rendered config, sockets, nginx temp paths (tmpfs)
    "DOMAIN": "localhost",  # facilities at https://<slug>.<domain>/ (medcell_common.origins)
    "MAX_BODY": 25 * MIB,
    "CONNECT_TIMEOUT": 3.0,
    "READ_TIMEOUT": 60.0,
    # A request forwarded to another node's gateway: seconds it may wait for the next bytes of
    # the answer (or to send more of its body) before the node counts as lost (503).
    "PEER_TIMEOUT": 15.0,
    # A request waits this long for its facility from when nginx received it, the activator's
    # queue included; capped by wake_deadline() below READ_TIMEOUT, so that a long queue ends in
    # the activator's 503 with Retry-After rather than nginx's 504.
    "WAKE_TIMEOUT": 55.0,
    "WAKE_BUDGET": 20,  # distinct sleeping facilities one client may wake per window; 0: no limit
    "WAKE_BUDGET_WINDOW": 600,  # seconds
    "ROUTES_REFRESH": 0.25,
    "HTTPS_BIND": "0.0.0.0:8443",
    "HTTP_BIND": "0.0.0.0:8080",
    "PUBLIC_HTTPS_PORT": 443,
    "WORKERS": None,  # nginx worker processes; None: the usable CPUs, at most four
    "CONN_PER_CLIENT": 256,  # simultaneous connections per client address; 0: no limit
    # Requests in progress per client address at one facility, and held by the activator (all
    # sleeping facilities together); streamed uploads in progress per facility, all clients.
    "CONN_PER_FACILITY": 16,
    "ACTIVATOR_PER_CLIENT": 32,
    "UPLOADS_PER_FACILITY": 4,
    # Streamed uploads the activator holds at once, for all sleeping facilities together: an
    # eighth of its threads (gateway/gunicorn_settings.py: 128).
    "ACTIVATOR_UPLOADS": 16,
    "BODY_TIMEOUT": 10.0,  # seconds a client may send nothing in the middle of a request body
    # Load balancers in front (addresses or networks): their X-Forwarded-For names the client.
    "TRUSTED_PROXIES": (),
    "LOGIN_RATE": 10,  # login requests per second per client address, with a burst of ten times
    "LINK_RATE": 20,  # patient-link requests per second per client address, burst ten times
    "NGINX": "nginx",
    # Cluster mode: a directory with the cluster CA's certificate and this node's certificate
    # and key (ca.crt, node.crt, node.key). Unset: no peer listener, remote facilities get 503.
    "CLUSTER_TLS": None,
    # Where the other nodes' gateways reach this one; they always connect to GATEWAY_PEER_PORT.
    "PEER_BIND": f"0.0.0.0:{GATEWAY_PEER_PORT}",
}


def _networks(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks, each checked and written out in canonical form."""
    return tuple(
        str(ipaddress.ip_network(item.strip(), strict=False))
        for item in value.split(",")
        if item.strip()
    )


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _duration(raw: str) -> int:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


# environment variable -> (setting, parser)
ENVIRONMENT = {
    "MEDCELL_GATEWAY_CONFIG": ("GATEWAY_CONFIG_DIR", str),
    "MEDCELL_GATEWAY_RUN_DIR": ("RUN_DIR", str),
    "MEDCELL_GATEWAY_STATE_DIR": ("STATE_DIR", str),
    "MEDCELL_DOMAIN": ("DOMAIN", lambda v: v.strip().strip(".").lower() or "localhost"),
    "MEDCELL_GATEWAY_MAX_BODY": ("MAX_BODY", int),
    "MEDCELL_GATEWAY_CONNECT_TIMEOUT": ("CONNECT_TIMEOUT", float),
    "MEDCELL_GATEWAY_TIMEOUT": ("READ_TIMEOUT", float),
    "MEDCELL_GATEWAY_PEER_TIMEOUT": ("PEER_TIMEOUT", float),
    "MEDCELL_GATEWAY_WAKE_TIMEOUT": ("WAKE_TIMEOUT", float),
    "MEDCELL_WAKE_BUDGET": ("WAKE_BUDGET", _count),
    "MEDCELL_WAKE_BUDGET_WINDOW": ("WAKE_BUDGET_WINDOW", _duration),
    "MEDCELL_GATEWAY_HTTPS_BIND": ("HTTPS_BIND", str),
    "MEDCELL_GATEWAY_HTTP_BIND": ("HTTP_BIND", str),
    "MEDCELL_GATEWAY_PORT": ("PUBLIC_HTTPS_PORT", int),
    "MEDCELL_GATEWAY_WORKERS": ("WORKERS", int),
    "MEDCELL_GATEWAY_CONN_PER_CLIENT": ("CONN_PER_CLIENT", int),
    "MEDCELL_GATEWAY_CONN_PER_FACILITY": ("CONN_PER_FACILITY", int),
    "MEDCELL_GATEWAY_ACTIVATOR_PER_CLIENT": ("ACTIVATOR_PER_CLIENT", int),
    "MEDCELL_GATEWAY_UPLOADS_PER_FACILITY": ("UPLOADS_PER_FACILITY", int),
    "MEDCELL_GATEWAY_ACTIVATOR_UPLOADS": ("ACTIVATOR_UPLOADS", int),
    "MEDCELL_GATEWAY_BODY_TIMEOUT": ("BODY_TIMEOUT", float),
    "MEDCELL_GATEWAY_TRUSTED_PROXIES": ("TRUSTED_PROXIES", _networks),
    "MEDCELL_GATEWAY_LOGIN_RATE": ("LOGIN_RATE", int),
    "MEDCELL_GATEWAY_LINK_RATE": ("LINK_RATE", int),
    "MEDCELL_GATEWAY_NGINX": ("NGINX", str),
    "MEDCELL_GATEWAY_CLUSTER_TLS": ("CLUSTER_TLS", str),
    "MEDCELL_GATEWAY_PEER_BIND": ("PEER_BIND", str),
}


def settings_from_env(environ: Mapping[str, str] = os.environ) -> dict:
    """Return the gateway settings: the defaults, overridden by any MEDCELL_* variables set."""
    settings = dict(DEFAULTS)
    for variable, (name, parse) in ENVIRONMENT.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            settings[name] = parse(raw)
        except ValueError as e:
            raise ConfigError(f"{variable}={raw!r} is not valid") from e
    return settings


# What the activator keeps back of nginx's READ_TIMEOUT to answer 503 itself: a quarter of it, at
# most this many seconds.
ANSWER_MARGIN = 5.0


def wake_deadline(settings: Mapping) -> float:
    """Seconds after nginx received a request for a sleeping facility by which the activator has
    either got its wake or answered 503: WAKE_TIMEOUT, but always ending safely before nginx's
    proxy_read_timeout for the activator (READ_TIMEOUT), after which nginx would answer 504."""
    read_timeout = float(settings["READ_TIMEOUT"])
    margin = min(ANSWER_MARGIN, read_timeout / 4)
    return max(0.0, min(float(settings["WAKE_TIMEOUT"]), read_timeout - margin))


def routes_file(settings: Mapping) -> str:
    return os.path.join(settings["GATEWAY_CONFIG_DIR"], "routes.json")


def tls_files(settings: Mapping) -> tuple[str, str]:
    tls = os.path.join(settings["GATEWAY_CONFIG_DIR"], "tls")
    return os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")


CLUSTER_TLS_FILES = ("ca.crt", "node.crt", "node.key")


def cluster_tls_files(settings: Mapping) -> tuple[str, str, str] | None:
    """The cluster CA's certificate, this node's certificate and key; None outside a cluster."""
    if not settings.get("CLUSTER_TLS"):
        return None
    ca, cert, key = (os.path.join(settings["CLUSTER_TLS"], name) for name in CLUSTER_TLS_FILES)
    return ca, cert, key


def facilities_dir(settings: Mapping) -> str:
    return os.path.join(settings["RUN_DIR"], "facilities")


def facility_socket(settings: Mapping, slug: str) -> str:
    return os.path.join(facilities_dir(settings), slug, "app.sock")


def supervisor_socket(settings: Mapping) -> str:
    return os.path.join(settings["RUN_DIR"], "supervisor", "wake.sock")


def applied_file(settings: Mapping) -> str:
    return os.path.join(settings["RUN_DIR"], "gateway", "applied.json")


def activator_socket(settings: Mapping) -> str:
    return os.path.join(settings["STATE_DIR"], "activator.sock")

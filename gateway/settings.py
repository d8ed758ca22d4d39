"""Gateway settings: defaults in code, overridden from the environment in exactly one place."""

import os
from collections.abc import Mapping

from .errors import ConfigError

MIB = 1024 * 1024

DEFAULTS = {
    "GATEWAY_CONFIG_DIR": "/etc/medcell-gateway",
    "ROUTES_FILE": None,  # derived from GATEWAY_CONFIG_DIR when not set
    "DOMAIN": None,
    "MAX_BODY": 25 * MIB,
    "CONNECT_TIMEOUT": 3.0,
    "READ_TIMEOUT": 60.0,
    "POOL_SIZE": 16,
    "ROUTES_REFRESH": 0.1,
    "HTTPS_BIND": "0.0.0.0:8443",
    "HTTP_BIND": "0.0.0.0:8080",
    "PUBLIC_HTTPS_PORT": 443,
}

# environment variable -> (setting, parser)
ENVIRONMENT = {
    "MEDCELL_GATEWAY_CONFIG": ("GATEWAY_CONFIG_DIR", str),
    "MEDCELL_DOMAIN": ("DOMAIN", lambda v: v.strip().strip(".").lower() or None),
    "MEDCELL_GATEWAY_MAX_BODY": ("MAX_BODY", int),
    "MEDCELL_GATEWAY_CONNECT_TIMEOUT": ("CONNECT_TIMEOUT", float),
    "MEDCELL_GATEWAY_TIMEOUT": ("READ_TIMEOUT", float),
    "MEDCELL_GATEWAY_POOL_SIZE": ("POOL_SIZE", int),
    "MEDCELL_GATEWAY_HTTPS_BIND": ("HTTPS_BIND", str),
    "MEDCELL_GATEWAY_HTTP_BIND": ("HTTP_BIND", str),
    "MEDCELL_GATEWAY_PORT": ("PUBLIC_HTTPS_PORT", int),
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


def routes_file(settings: Mapping) -> str:
    return settings["ROUTES_FILE"] or os.path.join(settings["GATEWAY_CONFIG_DIR"], "routes.json")


def tls_files(settings: Mapping) -> tuple[str, str]:
    tls = os.path.join(settings["GATEWAY_CONFIG_DIR"], "tls")
    return os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")

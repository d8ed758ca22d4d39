"""Each facility's own web origin, `https://<slug>.<domain>[:port]/`, defined once.

The CLI prints it, the facility builds its absolute links from it (never from a request's `Host`),
the mail relay checks every link against it, and the gateway serves exactly these hosts.
"""

from medcell_common.rules import check_slug

DEFAULT_DOMAIN = "localhost"
DEFAULT_PORT = 8443


def facility_host(slug: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The facility's host name, `<slug>.<domain>`; ValueError for a bad slug or domain."""
    check_slug(slug)
    domain = (domain or DEFAULT_DOMAIN).strip().rstrip(".").lower()
    labels = domain.split(".")
    if (
        not domain
        or any(not label or len(label) > 63 for label in labels)
        or not all(label.replace("-", "").isalnum() and label.isascii() for label in labels)
    ):
        raise ValueError(f"invalid domain {domain!r}")
    return f"{slug}.{domain}"


def facility_origin(slug: str, domain: str = DEFAULT_DOMAIN, port: int = DEFAULT_PORT) -> str:
    """The facility's origin with a trailing slash; the port is left out when it is 443."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"invalid port {port!r}")
    suffix = "" if port == 443 else f":{port}"
    return f"https://{facility_host(slug, domain)}{suffix}/"

"""Settings from the environment, read in one place, and the names of every Docker object."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from medcell_common.interfaces import NODE_API_PORT, Label
from medcell_common.origins import DEFAULT_DOMAIN, facility_host, facility_origin
from provisioner.host.errors import InvalidArgument
from provisioner.host.validation import parse_duration

FACILITY_IMAGE = "medcell-facility:latest"
GATEWAY_IMAGE = "medcell-gateway:latest"
SUPERVISOR_IMAGE = "medcell-supervisor:latest"
DEFAULT_IDLE = "15m"
FACILITY_UID = 10001  # the user every facility process runs as (specs.FACILITY_USER)
# What one awake facility may take of the host's memory (docker stats ~36 MiB, its containerd-shim
# ~3 MiB, and room for a burst), and what the host keeps for itself, gateway and supervisor.
AWAKE_FACILITY_BYTES = 64 * 1024 * 1024
HOST_RESERVE_BYTES = 2 * 1024 * 1024 * 1024
MIN_AWAKE = 4
# Internal: lets tests run beside an operator's installation without touching it.
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,30}$")

METRICS_PORT = 9464  # the supervisor's Prometheus endpoint (the port Prometheus' own list gives)


@dataclass(frozen=True)
class Facility:
    """One facility as the provisioner addresses it, resolved once from its slug: its Docker
    objects' names, the host directory of its socket and its own origin."""

    slug: str
    container: str
    data_volume: str
    keys_volume: str
    socket_dir: Path
    socket: Path
    url: str


@dataclass(frozen=True)
class Config:
    """Everything the provisioner takes from its environment."""

    home: Path
    prefix: str = "medcell"
    gateway_port: int = 8443
    gateway_http_port: int = 8080
    gateway_bind: str = ""
    subnet_pool: str = "10.213.0.0/16"
    domain: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    health_timeout: float = 90.0
    gateway_cpus: float = 1.0
    facility_image: str = FACILITY_IMAGE
    gateway_image: str = GATEWAY_IMAGE
    supervisor_image: str = SUPERVISOR_IMAGE
    image_tag: str = "latest"
    idle_timeout: int = 900  # seconds without a request before a facility sleeps; 0 = never
    backup_every: int = 0  # cluster mode: a scheduled backup of each facility this often; 0 = none
    # Internal: whose socket the supervisor and CLI accept as a facility's (tests run facility
    # processes as themselves).
    facility_uid: int = FACILITY_UID
    # Load balancers in front of the gateway: only their X-Forwarded-For names a client.
    trusted_proxies: tuple[str, ...] = ()
    max_awake: int = 64  # facilities awake at once on this host (MEDCELL_MAX_AWAKE)
    wakes_at_once: int = 0  # facilities started at once (MEDCELL_WAKES_AT_ONCE); 0: from the CPUs
    wake_budget: int = 20  # distinct facilities one client may wake per window; 0 = no limit
    wake_budget_window: int = 600  # seconds
    timezone: str = "Europe/Berlin"  # of the practices' opening hours (MEDCELL_TIMEZONE)
    # Where a cluster node's supervisor serves its node API (MEDCELL_NODE_API_BIND).
    node_api_bind: tuple[str, int] = ("0.0.0.0", NODE_API_PORT)
    # Where the supervisor serves GET /metrics (MEDCELL_METRICS_BIND): loopback unless set.
    metrics_bind: tuple[str, int] = ("127.0.0.1", METRICS_PORT)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build the settings from environment variables (os.environ unless given)."""
        env = os.environ if env is None else env
        home = Path(env.get("MEDCELL_HOME") or Path.home() / ".medcell").expanduser()
        prefix = env.get("MEDCELL_DOCKER_PREFIX") or "medcell"
        if not _PREFIX_RE.match(prefix):
            raise InvalidArgument(f"MEDCELL_DOCKER_PREFIX {prefix!r} is not a valid Docker name")
        pool = env.get("MEDCELL_SUBNET_POOL") or cls.subnet_pool
        try:
            network = ipaddress.ip_network(pool)
        except ValueError as e:
            raise InvalidArgument(f"MEDCELL_SUBNET_POOL {pool!r} is not a network: {e}") from e
        if network.version != 4 or network.prefixlen > 28:
            raise InvalidArgument(f"MEDCELL_SUBNET_POOL {pool!r} must be IPv4 and /28 or larger")
        tag = env.get("MEDCELL_IMAGE_TAG") or "latest"
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
            raise InvalidArgument(f"MEDCELL_IMAGE_TAG {tag!r} is not a valid image tag")
        domain = (env.get("MEDCELL_DOMAIN") or "").strip().rstrip(".").lower() or None
        if domain:
            try:
                facility_host("x", domain)
            except ValueError as e:
                raise InvalidArgument(f"MEDCELL_DOMAIN {domain!r} is not a domain name") from e
        cert, key = env.get("MEDCELL_TLS_CERT"), env.get("MEDCELL_TLS_KEY")
        if bool(cert) != bool(key):
            raise InvalidArgument("set both MEDCELL_TLS_CERT and MEDCELL_TLS_KEY, or neither")
        return cls(
            home=home,
            prefix=prefix,
            gateway_port=_port(env, "MEDCELL_GATEWAY_PORT", 8443),
            gateway_http_port=_port(env, "MEDCELL_GATEWAY_HTTP_PORT", 8080),
            gateway_bind=env.get("MEDCELL_GATEWAY_BIND", ""),
            subnet_pool=str(network),
            domain=domain,
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            health_timeout=_positive(env, "MEDCELL_HEALTH_TIMEOUT", 90.0, "a number of seconds"),
            # The gateway carries every facility's traffic: by default it may use every core,
            # while each facility stays capped at one so none can starve the others.
            gateway_cpus=_positive(
                env, "MEDCELL_GATEWAY_CPUS", float(os.cpu_count() or 1), "a number of CPUs"
            ),
            # The same variable deploy/build-images.sh tags its images with.
            facility_image=FACILITY_IMAGE.replace(":latest", f":{tag}"),
            gateway_image=GATEWAY_IMAGE.replace(":latest", f":{tag}"),
            supervisor_image=SUPERVISOR_IMAGE.replace(":latest", f":{tag}"),
            image_tag=tag,
            idle_timeout=_idle(env),
            # Unset: no scheduled backups.
            backup_every=(
                _positive_duration(env, "MEDCELL_BACKUP_EVERY", "")
                if env.get("MEDCELL_BACKUP_EVERY")
                else 0
            ),
            trusted_proxies=_networks(env, "MEDCELL_GATEWAY_TRUSTED_PROXIES"),
            max_awake=_max_awake(env),
            wakes_at_once=_count(env, "MEDCELL_WAKES_AT_ONCE", 0),
            wake_budget=_count(env, "MEDCELL_WAKE_BUDGET", 20),
            wake_budget_window=_positive_duration(env, "MEDCELL_WAKE_BUDGET_WINDOW", "10m"),
            timezone=_timezone(env),
            node_api_bind=_bind(env, "MEDCELL_NODE_API_BIND", NODE_API_PORT),
            metrics_bind=_bind(env, "MEDCELL_METRICS_BIND", METRICS_PORT, "127.0.0.1"),
        )

    def facility(self, slug: str) -> Facility:
        """The facility's container and volume names, socket directory and URL."""
        base = f"{self.prefix}-{slug}"
        return Facility(
            slug=slug,
            container=base,
            data_volume=f"{base}-data",
            keys_volume=f"{base}-keys",
            socket_dir=self.facility_socket_dir(slug),
            socket=self.facility_socket(slug),
            url=self.facility_url(slug),
        )

    @property
    def gateway_container(self) -> str:
        return f"{self.prefix}-gateway"

    @property
    def supervisor_container(self) -> str:
        return f"{self.prefix}-supervisor"

    @property
    def edge_network(self) -> str:
        return f"{self.prefix}-edge"

    @property
    def mail_network(self) -> str:
        """The supervisor's own network, made only when it must reach an SMTP server."""
        return f"{self.prefix}-mail"

    @property
    def metrics_network(self) -> str:
        """The supervisor's own network on one host when it relays no mail: only for publishing
        its /metrics on MEDCELL_METRICS_BIND (no route out, nobody else on it)."""
        return f"{self.prefix}-metrics"

    @property
    def gateway_dir(self) -> Path:
        return self.home / "gateway"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def facility_socket_dir(self, slug: str) -> Path:
        """The host directory bind-mounted at the facility's /run/medcell."""
        return self.run_dir / "facilities" / slug

    def facility_socket(self, slug: str) -> Path:
        return self.facility_socket_dir(slug) / "app.sock"

    @property
    def supervisor_run_dir(self) -> Path:
        return self.run_dir / "supervisor"

    @property
    def supervisor_socket(self) -> Path:
        return self.supervisor_run_dir / "wake.sock"

    @property
    def gateway_run_dir(self) -> Path:
        return self.run_dir / "gateway"

    @property
    def state_dir(self) -> Path:
        """Per-facility state files: desired state, idle timeout, sleep and wake-up times."""
        return self.home / "facilities"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def public_domain(self) -> str:
        """MEDCELL_DOMAIN, under which every facility has its own origin (default localhost)."""
        return self.domain or DEFAULT_DOMAIN

    @property
    def base_url(self) -> str:
        """The gateway's public URL, with a trailing slash."""
        port = "" if self.gateway_port == 443 else f":{self.gateway_port}"
        return f"https://{self.public_domain}{port}/"

    def facility_url(self, slug: str) -> str:
        """The facility's own origin, https://<slug>.<domain>[:port]/ (what `create` prints)."""
        return facility_origin(slug, self.public_domain, self.gateway_port)

    def labels(self, **extra: str) -> dict[str, str]:
        """Labels for a new object: the instance label plus the given `medcell.*` ones."""
        # Plain strings: a spec's repr is its fingerprint, which must not change with the types.
        labels = {str(Label.INSTANCE): self.prefix}
        labels.update({f"medcell.{k}": v for k, v in extra.items()})
        return labels


def parse_idle(text: str) -> int:
    """Seconds of an idle timeout: a positive duration, or `never` (0: never put to sleep)."""
    if text == "never":
        return 0
    seconds = parse_duration(text)
    if seconds <= 0:
        raise InvalidArgument(f"idle timeout {text!r} must be longer than zero, or `never`")
    return seconds


def idle_text(seconds: int) -> str:
    """The inverse of parse_idle, for environment variables and labels: always in seconds (not
    rules.format_duration's shortest form), because it is part of every container's fingerprint
    and a new spelling would recreate every facility on the next `medcell up`."""
    return "never" if seconds == 0 else f"{seconds}s"


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks, in canonical form."""
    networks = []
    for item in (env.get(name) or "").split(","):
        if item.strip():
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError as e:
                raise InvalidArgument(
                    f"{name}: {item.strip()!r} is not an address or network"
                ) from e
    return tuple(networks)


def _idle(env: Mapping[str, str]) -> int:
    try:
        return parse_idle(env.get("MEDCELL_IDLE_TIMEOUT") or DEFAULT_IDLE)
    except InvalidArgument as e:
        raise InvalidArgument(f"MEDCELL_IDLE_TIMEOUT: {e}") from e


def default_max_awake(meminfo: Path = Path("/proc/meminfo")) -> int:
    """How many facilities this host's memory holds awake, after what the host keeps for itself."""
    try:
        line = next(x for x in meminfo.read_text().splitlines() if x.startswith("MemTotal:"))
        total = int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError, IndexError):
        return MIN_AWAKE * 16  # unknown: a small host's worth
    return max(MIN_AWAKE, (total - HOST_RESERVE_BYTES) // AWAKE_FACILITY_BYTES)


def _max_awake(env: Mapping[str, str]) -> int:
    if not env.get("MEDCELL_MAX_AWAKE"):
        return default_max_awake()
    value = _count(env, "MEDCELL_MAX_AWAKE", 0)
    if value < 1:
        raise InvalidArgument("MEDCELL_MAX_AWAKE must be at least 1")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidArgument(f"{name} {raw!r} is not a whole number")
    return int(raw)


def _timezone(env: Mapping[str, str]) -> str:
    name = env.get("MEDCELL_TIMEZONE") or "Europe/Berlin"
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as e:
        raise InvalidArgument(
            f"MEDCELL_TIMEZONE {name!r} is not a time zone (say Europe/Berlin)"
        ) from e
    return name


def _positive_duration(env: Mapping[str, str], name: str, default: str) -> int:
    """A duration setting (30s, 10m, 1h ...) in seconds, longer than zero."""
    raw = env.get(name) or default
    try:
        seconds = parse_duration(raw)
    except InvalidArgument as e:
        raise InvalidArgument(f"{name}: {e}") from e
    if seconds <= 0:
        raise InvalidArgument(f"{name} {raw!r} must be longer than zero")
    return seconds


def _bind(
    env: Mapping[str, str], name: str, default_port: int, default_host: str = "0.0.0.0"
) -> tuple[str, int]:
    """IPv4[:port] to listen on (`default_host` and the default port unless given)."""
    raw = env.get(name) or default_host
    host, _, port = raw.partition(":")
    try:
        address = str(ipaddress.IPv4Address(host))
    except ValueError as e:
        raise InvalidArgument(f"{name} {raw!r} is not IPv4[:port]") from e
    if not port:
        return address, default_port
    return address, _port({name: port}, name, default_port)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InvalidArgument(f"{name} {raw!r} is not a TCP port")
    return int(raw)


def _positive(env: Mapping[str, str], name: str, default: float, what: str) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise InvalidArgument(f"{name} {raw!r} is not {what}") from e
    if value <= 0:
        raise InvalidArgument(f"{name} must be positive")
    return value

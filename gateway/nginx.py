"""nginx as the data plane: its configuration rendered from the templates, tested, (re)loaded.

Requests to awake facilities never touch Python: nginx proxies them straight to the facility's
socket. This module only writes nginx's files, runs `nginx -t` on them, starts the master as a
child and asks it to reload (SIGHUP: new workers take over, old ones finish what they serve).
"""

import ipaddress
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from medcell_common.files import write_atomic
from medcell_common.interfaces import CLUSTER_PEER_NAME, GATEWAY_PEER_PORT, RouteState
from medcell_common.origins import facility_host

from . import errorpages
from .errors import ConfigError, NginxError
from .routes import RouteTable
from .settings import activator_socket, cluster_tls_files, facilities_dir, tls_files
from .targets import ALLOWED, DOT_SEGMENT, SLUG

TEMPLATES = Path(__file__).resolve().parent / "templates"
INCLUDES = (
    "facility.conf",
    "errors.conf",
    "refusals.conf",
    "maps.conf",
    "limits.conf",
    "uploads.conf",
)
# Rendered only in cluster mode (MEDCELL_GATEWAY_CLUSTER_TLS): the peer listener.
PEER_INCLUDES = ("peer.conf", "peer-tls.conf")
# facility.conf rendered with the peer timeouts, for the requests forwarded to another node.
REMOTE_INCLUDE = "facility-remote.conf"
# The gateway's own policy, on every answer. A facility's policy comes as a second header
# (facility.conf): browsers enforce both, so a facility can only tighten this one.
# blob: frames are the pages' preview of a PDF a user chose to send (the file itself, never a page).
CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-src blob:; frame-ancestors 'none'"
)
# The policy's value comes from maps.conf ($gw_csp): none on the peer listener's answers.
SECURITY_HEADERS = """\
    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
    add_header Content-Security-Policy $gw_csp always;
    add_header X-Content-Type-Options nosniff always;
    add_header Referrer-Policy no-referrer always;
    add_header X-Frame-Options DENY always;
    add_header Cache-Control $gw_cache_control always;"""
# A cookie domain no host name matches (RFC 2606 .invalid): browsers drop such a cookie.
REFUSED_COOKIE_DOMAIN = "refused.invalid"
ERROR_HEADERS = SECURITY_HEADERS + "\n    add_header Vary Accept always;"
# The methods nginx passes on to a facility; anything else is its own 405 with this Allow.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# The facility routes whose bodies are files (services/facility/http/bodies.py, UPLOAD_ENDPOINTS):
# the only ones streamed to the facility as they arrive (uploads.conf); nginx reads every other
# body whole before the facility sees it, so a slow client never holds one of its threads.
UPLOAD_PATHS = "/(?:api/v1/conversations/[^/]+/attachments|staff/c/[^/]+/messages|patient/messages)"
# Largest body read whole by nginx: the facility refuses more than 256 KiB on these routes itself.
BUFFERED_BODY = 1024 * 1024
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
UPSTREAM_PREFIX = "facility_"  # nginx upstream group of an awake facility: facility_<slug>
PEER_PREFIX = "peer_"  # nginx upstream group of another node's gateway: peer_<address>
# Paths and binds go into the configuration unquoted: allow only what cannot break out of it.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
_BIND = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):[0-9]{1,5}")


def usable_cpus() -> int:
    """CPUs this process may really use: the machine's, capped by a container's CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            fields = Path(path).read_text().split()
            if path.endswith("cpu.max") and fields[0] != "max":
                cpus = min(cpus, max(1, -(-int(fields[0]) // int(fields[1]))))
            elif path.endswith("cfs_quota_us") and int(fields[0]) > 0:
                period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
                cpus = min(cpus, max(1, -(-int(fields[0]) // period)))
        except (OSError, ValueError, IndexError):
            continue
        break
    return cpus


def _safe_path(value: str) -> str:
    if not _SAFE_PATH.fullmatch(value):
        raise ConfigError(f"path not usable in the nginx configuration: {value!r}")
    return value


def _bind(value: str) -> str:
    if not _BIND.fullmatch(value):
        raise ConfigError(f"listen address not usable: {value!r}")
    return value


def placeholders(settings: Mapping) -> dict[str, str]:
    """The values for the templates' @@NAME@@ placeholders, each checked for its form."""
    cert, key = tls_files(settings)
    state = _safe_path(settings["STATE_DIR"])
    facilities = _safe_path(facilities_dir(settings))
    if activator_socket(settings) != f"{state}/activator.sock":
        raise ConfigError("the activator socket must live in the state directory")
    port = int(settings["PUBLIC_HTTPS_PORT"])
    domain = settings["DOMAIN"]
    try:
        # The same rule the provisioner and the facility build their origins with.
        facility_host("x", domain)
    except ValueError as e:
        raise ConfigError(f"MEDCELL_DOMAIN is not a domain name: {domain!r}") from e
    workers = int(settings["WORKERS"] or min(usable_cpus(), 4))
    login, link = int(settings["LOGIN_RATE"]), int(settings["LINK_RATE"])

    def conn(name: str) -> str:
        # nginx has no "unlimited" for limit_conn: the largest value stands for it.
        value = int(settings[name])
        return str(value if value > 0 else 65535)

    max_body = int(settings["MAX_BODY"])
    read_timeout = float(settings["READ_TIMEOUT"])
    values = {
        "STATE": state,
        "FACILITIES": facilities,
        "UPSTREAM_PREFIX": UPSTREAM_PREFIX,
        "CERT": _safe_path(cert),
        "KEY": _safe_path(key),
        "HTTPS_BIND": _bind(settings["HTTPS_BIND"]),
        "HTTP_BIND": _bind(settings["HTTP_BIND"]),
        "PORT_SUFFIX": "" if port == 443 else f":{port}",
        "WORKERS": str(max(1, workers)),
        "MAX_BODY": str(max_body),
        "BUFFERED_BODY": str(min(max_body, BUFFERED_BODY)),
        "BODY_TIMEOUT": f"{max(1.0, float(settings['BODY_TIMEOUT'])):g}",
        "UPLOAD_PATHS": UPLOAD_PATHS,
        "CONNECT_TIMEOUT": f"{float(settings['CONNECT_TIMEOUT']):g}",
        "TIMEOUT": f"{read_timeout:g}",
        # Never longer than a local facility's: a peer that is slower is a node that is gone.
        "PEER_TIMEOUT": f"{min(float(settings['PEER_TIMEOUT']), read_timeout):g}",
        "LOGIN_RATE": str(max(1, login)),
        "LOGIN_BURST": str(max(1, login) * 10),
        "LINK_RATE": str(max(1, link)),
        "LINK_BURST": str(max(1, link) * 10),
        "CONN_PER_CLIENT": conn("CONN_PER_CLIENT"),
        "CONN_PER_FACILITY": conn("CONN_PER_FACILITY"),
        "ACTIVATOR_PER_CLIENT": conn("ACTIVATOR_PER_CLIENT"),
        "UPLOADS_PER_FACILITY": conn("UPLOADS_PER_FACILITY"),
        "ACTIVATOR_UPLOADS": conn("ACTIVATOR_UPLOADS"),
        "REAL_IP": real_ip(settings["TRUSTED_PROXIES"]),
        "SLUG": SLUG,
        "DOT_RE": DOT_SEGMENT,
        "TARGET_RE": ALLOWED,
        "SECURITY_HEADERS": SECURITY_HEADERS,
        "CSP": CSP,
        "ERROR_HEADERS": ERROR_HEADERS,
        "ALLOW": ", ".join(METHODS),
        "METHODS_OK": " ".join(f"{method} 1;" for method in METHODS),
        "ACCEPT_MAP": errorpages.accept_map(),
        **error_bodies(),
        # Running as root (the host's tests), workers would otherwise drop to "nobody", which
        # cannot reach the sockets; in the image nginx runs unprivileged and needs no user line.
        "USER": f"user {pwd.getpwuid(0).pw_name};" if os.geteuid() == 0 else "",
        "DOMAIN": domain,
        "DOMAIN_RE": re.escape(domain).replace("\\-", "-"),
        "REFUSED_COOKIE_DOMAIN": REFUSED_COOKIE_DOMAIN,
        **peer_placeholders(settings),
    }
    return values


def peer_placeholders(settings: Mapping) -> dict[str, str]:
    """Cluster mode's values: the peer listener and how remote facilities are forwarded."""
    files = cluster_tls_files(settings)
    if files is None:
        return {
            "PEER_SERVERS": "    # Not in a cluster (no cluster TLS files): no peer listener.",
            "PEER_PROXY": "# Not in a cluster: a remote facility has no peer to go to (503).",
        }
    ca, cert, key = (_safe_path(path) for path in files)
    # Each peer is verified as a node of this cluster: signed by its CA, carrying the name every
    # node certificate carries. No SNI: the peer has one certificate, and nginx answers 421 when
    # a verified connection's SNI differs from the Host of its requests.
    proxy = f"""proxy_ssl_certificate {cert};
proxy_ssl_certificate_key {key};
proxy_ssl_trusted_certificate {ca};
proxy_ssl_verify on;
proxy_ssl_verify_depth 1;
proxy_ssl_name {CLUSTER_PEER_NAME};
proxy_ssl_server_name off;
proxy_ssl_protocols TLSv1.3;
proxy_ssl_session_reuse on;"""
    return {
        "PEER_SERVERS": "    include @@STATE@@/peer.conf;",
        "PEER_PROXY": proxy,
        "PEER_BIND": _bind(settings["PEER_BIND"]),
        "CLUSTER_CA": ca,
        "NODE_CERT": cert,
        "NODE_KEY": key,
    }


def real_ip(proxies) -> str:
    """nginx's realip lines: the client's address from X-Forwarded-For, sent by these alone."""
    if not proxies:
        return "# No trusted proxy: the client is the address the connection comes from."
    lines = [f"set_real_ip_from {ipaddress.ip_network(p, strict=False)};" for p in proxies]
    return "\n".join([*lines, "real_ip_header X-Forwarded-For;", "real_ip_recursive on;"])


def error_bodies() -> dict[str, str]:
    """The JSON_<status> and HTML_<status> placeholders: the gateway's own answers."""
    bodies = {}
    for status in errorpages.ANSWERS:
        bodies[f"JSON_{status}"] = errorpages.nginx_string(errorpages.json_body(status))
        bodies[f"HTML_{status}"] = errorpages.nginx_string(errorpages.html_page(status))
    return bodies


def fill(template: str, values: Mapping[str, str]) -> str:
    # Twice: the security headers carry placeholders of their own.
    for _ in range(2):
        template = re.sub(r"@@([A-Z0-9_]+)@@", lambda m: values[m.group(1)], template)
    return template


def routes_conf(table: RouteTable, facilities: str, peers: bool = False) -> str:
    """The route map (facility slug -> state), an upstream per awake facility, the generation;
    with `peers` (cluster mode), each remote facility's peer and an upstream per peer gateway.

    An upstream group per running facility lets nginx keep connections to its socket open: a new
    connection per request costs the single-process facility more than the request itself; the
    same holds for the TLS connections to another node's gateway.
    """
    lines = ["map $slug $route_state {", '    default "";']
    # parse() admitted only strict slugs and the known states: nothing here needs quoting.
    lines += [f"    {slug} {state};" for slug, state in sorted(table.facilities.items())]
    lines += ["}", f'map $host $gw_generation {{ default "{int(table.generation)}"; }}']
    for slug, state in sorted(table.facilities.items()):
        if state == RouteState.RUNNING:
            # Idle connections close well before gunicorn's keep-alive (75 s) would close them,
            # so nginx never reuses one the facility is closing (no retries: proxy_next_upstream).
            lines.append(
                f"upstream {UPSTREAM_PREFIX}{slug} {{ server unix:{facilities}/{slug}/app.sock; "
                "keepalive 8; keepalive_timeout 30s; }"
            )
    # Without cluster TLS a remote facility has no peer (maps.conf: nothing listens, so 503).
    lines += ["map $slug $gw_peer_of {", '    default "";']
    if peers:
        # parse() admitted only canonical IPv4 addresses: safe in a name and in a server line.
        lines += [
            f"    {slug} {PEER_PREFIX}{peer.address.replace('.', '_')};"
            for slug, peer in sorted(table.peers.items())
        ]
    lines.append("}")
    for address in sorted({peer.address for peer in table.peers.values()} if peers else ()):
        # Idle connections close before the peer's own keep-alive (30 s) would close them.
        lines.append(
            f"upstream {PEER_PREFIX}{address.replace('.', '_')} "
            f"{{ server {address}:{GATEWAY_PEER_PORT}; keepalive 16; keepalive_timeout 20s; }}"
        )
    lines.append("")
    return "\n".join(lines)


class Nginx:
    """One nginx master (a child process) with its rendered configuration in STATE_DIR."""

    def __init__(self, settings: Mapping):
        self.settings = settings
        self.binary = settings["NGINX"]
        self.state = Path(settings["STATE_DIR"])
        self.conf = self.state / "nginx.conf"
        self.facilities = _safe_path(facilities_dir(settings))
        self.peers = cluster_tls_files(settings) is not None
        self.process: subprocess.Popen | None = None
        self._old_workers: set[int] = set()

    def render(self, table: RouteTable) -> None:
        """Write the whole configuration (done once, at start)."""
        values = placeholders(self.settings)
        self.state.mkdir(parents=True, exist_ok=True)
        for name in TEMP_DIRS:
            (self.state / name).mkdir(exist_ok=True)
        for name in INCLUDES + (PEER_INCLUDES if self.peers else ()):
            _write(self.state / name, fill((TEMPLATES / name).read_text(), values))
        # A remote facility's requests: facility.conf with the peer's timeouts.
        remote = {**values, "TIMEOUT": values["PEER_TIMEOUT"]}
        _write(self.state / REMOTE_INCLUDE, fill((TEMPLATES / "facility.conf").read_text(), remote))
        _write(self.state / "routes.conf", routes_conf(table, self.facilities, self.peers))
        _write(self.conf, fill((TEMPLATES / "nginx.conf").read_text(), values))
        self.test()

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.state}/", "-c", str(self.conf), *extra]

    def test(self) -> None:
        result = subprocess.run(self.command("-t", "-q"), capture_output=True, text=True)
        if result.returncode != 0:
            # nginx -t quotes only the configuration, which holds no request data.
            raise NginxError(f"nginx refused the configuration: {result.stderr.strip()[-500:]}")

    def start(self) -> subprocess.Popen:
        self.process = subprocess.Popen(self.command())
        return self.process

    def apply(self, table: RouteTable) -> None:
        """Swap in a new route map if nginx accepts it, then reload gracefully."""
        routes = self.state / "routes.conf"
        previous = routes.read_text()
        _write(routes, routes_conf(table, self.facilities, self.peers))
        try:
            self.test()
        except NginxError:
            _write(routes, previous)
            raise
        self._old_workers = self.accepting_workers()
        self.signal(signal.SIGHUP)

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)

    def loaded_generation(self, timeout: float = 0.5) -> int | None:
        """The generation the workers now accepting connections were configured with."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(str(self.state / "control.sock"))
                s.sendall(b"GET /generation HTTP/1.0\r\nHost: control\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        except OSError:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or not body.strip().isdigit():
            return None
        return int(body)

    def accepting_workers(self) -> set[int]:
        """Worker processes of this master that still accept connections (not shutting down)."""
        if not self.process:
            return set()
        return {
            pid for pid in _children(self.process.pid) if _title(pid) == b"nginx: worker process"
        }

    def wait_generation(self, generation: int, timeout: float = 10.0) -> bool:
        """True once new workers serve `generation` and no worker from before the reload accepts.

        A new worker answering is not enough: until the master's QUIT reaches an old worker, it
        still takes connections from the shared listening socket and routes them by the old table.
        """
        deadline = time.monotonic() + timeout
        old = self._old_workers
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                return False
            if self.loaded_generation() == generation and not old & self.accepting_workers():
                return True
            time.sleep(0.02)
        return False


def _children(ppid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == ppid:
            children.add(int(entry))
    return children


def _title(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().rstrip(b"\0").replace(b"\0", b" ").strip()
    except OSError:
        return b""


def _write(path: Path, text: str) -> None:
    """Atomically: nginx may read any of these files at any moment (a reload)."""
    write_atomic(path, text)

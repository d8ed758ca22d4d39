"""The client of a node's API: what a manager's CLI asks of another node's supervisor.

Mutual TLS with the cluster's own material ($MEDCELL_HOME/cluster/{ca.crt,node.crt,node.key}): the
node must show a certificate of the cluster CA carrying CLUSTER_PEER_NAME, and this host shows its
own. Answers are read as strictly as anything a facility prints: bounded in size and time.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from pathlib import Path

from medcell_common import strictjson
from medcell_common.interfaces import CLUSTER_PEER_NAME, NODE_API_PORT
from provisioner.host.docker_backend import EXEC_SECONDS, OUTPUT_BYTES
from provisioner.host.errors import (
    Busy,
    FacilityCommandFailed,
    FacilityNotFound,
    FacilityStopped,
    InvalidArgument,
    NodeError,
    NodeRefused,
    NodeUnreachable,
    StaleRoutes,
    WakeFailed,
)
from provisioner.host.validation import SLUG_RE, check_slug

API = "/v1"
MAX_TOMBSTONES = 5_000  # in one request (~150 bytes each, well inside the body limit)
MAX_BODY_BYTES = 4 * 1024 * 1024  # a routes map of ~50,000 facilities; the server's cap
MAX_ANSWER_BYTES = OUTPUT_BYTES + 64 * 1024  # a management command's output, and its envelope
TIMEOUT = 30.0  # connecting, and answers that involve no facility command
# Creating volumes, a key rotation or a wipe in a large facility: the node's own bound, and more.
COMMAND_SECONDS = EXEC_SECONDS + 60.0

# The node's error codes, and what this side raises for each (others: NodeError).
ERRORS: dict[str, type[NodeError] | type] = {
    "not_found": FacilityNotFound,
    "invalid": InvalidArgument,
    "unknown_command": InvalidArgument,
    "too_large": InvalidArgument,
    "stale_generation": StaleRoutes,
    "busy": Busy,
    "command_failed": FacilityCommandFailed,
    "facility_stopped": FacilityStopped,
    "wake_failed": WakeFailed,
}
# The statuses a sleep, wake, stop or start leaves a facility in.
LIFECYCLE_STATUSES = ("running", "asleep", "stopped")


def tls_files(tls_dir: Path) -> tuple[Path, Path, Path]:
    """The CA certificate, this node's certificate and its key."""
    return tls_dir / "ca.crt", tls_dir / "node.crt", tls_dir / "node.key"


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """TLS 1.2+, the peer verified by the cluster CA and CLUSTER_PEER_NAME; ours shown."""
    ca, cert, key = tls_files(tls_dir)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise NodeError(
            f"this host's cluster certificates in {tls_dir} are unusable ({e}); "
            "is it a member of the cluster (`medcell cluster join`)?",
            code="no_certificate",
        ) from e
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def split_address(address: str) -> tuple[str, int]:
    """IPv4[:port] of a node's API (NODE_API_PORT by default)."""
    host, _, port = address.partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError as e:
        raise InvalidArgument(f"node address {address[:60]!r} is not IPv4[:port]") from e
    if not port:
        return host, NODE_API_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"node address {address[:60]!r} has no valid port")
    return host, int(port)


class _Connection(http.client.HTTPConnection):
    """HTTPS to an IP address, verifying the peer by the cluster's name, not by that address."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=CLUSTER_PEER_NAME)
        except BaseException:
            raw.close()
            raise


class NodeClient:
    """One node's API: `info`, `prepare`, `manage`, `lifecycle`, `destroy`, `push_routes`."""

    def __init__(self, address: str, tls_dir: Path, timeout: float = TIMEOUT):
        self.host, self.port = split_address(address)
        self.address = f"{self.host}:{self.port}"
        self.context = client_context(tls_dir)
        self.timeout = timeout

    def info(self) -> dict:
        """{"node", "facilities", "awake", "memory"} of the node."""
        answer = self._call("GET", f"{API}/node", None, self.timeout)
        facilities = answer.get("facilities")
        if not (
            isinstance(answer.get("node"), str)
            and isinstance(facilities, list)
            and all(isinstance(s, str) and SLUG_RE.fullmatch(s) for s in facilities)
            and all(_count(answer.get(k)) for k in ("awake", "memory"))
        ):
            raise NodeError(f"node {self.address} answered GET /v1/node with unusable fields")
        return {k: answer[k] for k in ("node", "facilities", "awake", "memory")}

    def prepare(self, slug: str, labels: dict[str, str]) -> dict:
        """Make the facility's volumes, socket directory and state file there (idempotent)."""
        return self._call(
            "PUT",
            f"{API}/facilities/{check_slug(slug)}",
            {"labels": labels},
            max(self.timeout, COMMAND_SECONDS),
        )

    def manage(self, slug: str, *command: str) -> dict:
        """Run a whitelisted management command in the facility there; its JSON object."""
        answer = self._call(
            "POST",
            f"{API}/facilities/{check_slug(slug)}/manage",
            {"command": list(command)},
            max(self.timeout, COMMAND_SECONDS),
        )
        result = answer.get("result")
        if not isinstance(result, dict):
            raise NodeError(f"node {self.address} answered {command[:1]} without a result")
        return result

    def lifecycle(self, slug: str, action: str) -> str:
        """Sleep, wake, stop or start the facility there; the status it is left in."""
        answer = self._call(
            "POST",
            f"{API}/facilities/{check_slug(slug)}/lifecycle",
            {"action": action},
            max(self.timeout, COMMAND_SECONDS),
        )
        status = answer.get("status")
        if status not in LIFECYCLE_STATUSES:
            raise NodeError(f"node {self.address} answered {action} without a status")
        return status

    def add_tombstones(self, slug: str, items: list[dict]) -> int:
        """Hand the node (a manager) tombstones of a facility to keep; how many were new."""
        body = {"facility": check_slug(slug), "tombstones": items}
        answer = self._call("POST", f"{API}/tombstones", body, self.timeout)
        if not _count(answer.get("added")):
            raise NodeError(f"node {self.address} answered tombstones without a count")
        return answer["added"]

    def forget_tombstones(self, slug: str) -> int:
        """Have the node forget every tombstone of a deleted facility; how many went."""
        answer = self._call("DELETE", f"{API}/tombstones/{check_slug(slug)}", None, self.timeout)
        if not _count(answer.get("forgotten")):
            raise NodeError(f"node {self.address} answered tombstones without a count")
        return answer["forgotten"]

    def destroy(self, slug: str) -> dict:
        """Wipe, shred and remove the facility's data there: {"slug", "shredded", "receipt", …}."""
        return self._call(
            "DELETE", f"{API}/facilities/{check_slug(slug)}", None, 2 * COMMAND_SECONDS
        )

    def push_routes(self, generation: int, facilities: dict[str, dict[str, str]]) -> dict:
        """Hand the node the cluster's map {slug: {"node", "address"}} of this generation."""
        body = {"generation": generation, "facilities": facilities}
        return self._call("PUT", f"{API}/routes", body, self.timeout)

    def _call(self, method: str, path: str, body: dict | None, timeout: float) -> dict:
        data = None if body is None else json.dumps(body).encode()
        if data is not None and len(data) > MAX_BODY_BYTES:
            raise InvalidArgument(f"request to node {self.address} is larger than it takes")
        deadline = time.monotonic() + timeout
        connection = _Connection(self.host, self.port, self.context, min(timeout, self.timeout))
        # A node trickling its answer a byte at a time still gets no more than `timeout` in all.
        timer = threading.Timer(timeout, _shut, (connection,))
        timer.daemon = True
        timer.start()
        try:
            try:
                connection.connect()
            except ssl.SSLError as e:
                raise NodeRefused(
                    f"node {self.address} refused this host's certificate or showed one not of "
                    f"this cluster ({e.reason or e})",
                    code="tls",
                ) from e
            connection.sock.settimeout(timeout)
            headers = {"Content-Type": "application/json", "Connection": "close"}
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = _read_bounded(response, deadline, self.address)
        except ssl.SSLError as e:
            # TLS 1.3: a refused client certificate shows only when the first answer is read.
            raise NodeRefused(
                f"node {self.address} refused this host's certificate ({e.reason or e})", code="tls"
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise NodeUnreachable(
                f"node {self.address} does not answer its API ({type(e).__name__}: {e})",
                code="unreachable",
            ) from e
        finally:
            timer.cancel()
            connection.close()
        if time.monotonic() > deadline:
            raise NodeUnreachable(
                f"node {self.address} did not answer within {timeout:g} s", code="unreachable"
            )
        return self._answer(response.status, raw)

    def _answer(self, status: int, raw: bytes) -> dict:
        try:
            answer = strictjson.loads(raw)
        except strictjson.StrictJSONError:
            answer = None
        if not isinstance(answer, dict):
            raise NodeError(
                f"node {self.address} answered HTTP {status} without a JSON object", status=status
            )
        if 200 <= status < 300:
            return answer
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = error.get("code") if isinstance(error.get("code"), str) else "node_error"
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        message = "".join(c for c in message[:500] if c.isprintable())
        text = f"node {self.address}: {message or f'HTTP {status}'}"
        kind = ERRORS.get(code, NodeError)
        if issubclass(kind, NodeError):
            raise kind(text, code=code[:40], status=status)
        raise kind(text)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _shut(connection: http.client.HTTPConnection) -> None:
    # The plain socket's shutdown ends a read waiting on it, under TLS too.
    sock = connection.sock
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _read_bounded(response: http.client.HTTPResponse, deadline: float, address: str) -> bytes:
    """The answer's body: at most MAX_ANSWER_BYTES, read before the deadline."""
    length = response.getheader("Content-Length")
    if length is not None and (not length.isdigit() or int(length) > MAX_ANSWER_BYTES):
        raise NodeError(f"node {address} answered more than {MAX_ANSWER_BYTES} bytes")
    body = bytearray()
    while True:
        chunk = response.read1(64 * 1024)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise NodeError(f"node {address} answered more than {MAX_ANSWER_BYTES} bytes")
        if time.monotonic() > deadline:
            raise NodeUnreachable(f"node {address} was still answering after the time allowed")

"""The client of a node's API: what a manager's CLI asks of another node's supervisor.

Mutual TLS with the cluster's own material ($MEDCELL_HOME/cluster/{ca.crt,node.crt,node.key}): the
node must show a certificate of the cluster CA carrying CLUSTER_PEER_NAME, and this host shows its
own. Answers are read as strictly as anything a facility prints: bounded in size and time.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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
TRANSFER_SECONDS = 3600.0 + 60.0  # a backup or restore of a full facility, on the node's bound
CHUNK = 1024 * 1024
MAX_NODES = 1_000  # in a manager's list of ready nodes
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
LOCK_ID_RE = re.compile(r"^[a-z0-9]{1,64}$")

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

    def scaling_lookup(self, slugs: list[str]) -> dict:
        """(A manager) the facility services pinned to this host, and where those asked about
        are pinned: {"node", "pinned": {slug: replicas}, "placed": {slug: node or None}}."""
        answer = self._call("POST", f"{API}/scaling", {"slugs": sorted(slugs)}, self.timeout)
        node, pinned, placed = answer.get("node"), answer.get("pinned"), answer.get("placed")
        if not (
            isinstance(node, str)
            and isinstance(pinned, dict)
            and isinstance(placed, dict)
            and all(SLUG_RE.fullmatch(s) and v in (0, 1) for s, v in pinned.items())
            and all(
                SLUG_RE.fullmatch(s) and (v is None or isinstance(v, str))
                for s, v in placed.items()
            )
        ):
            raise NodeError(f"node {self.address} answered a scaling lookup with unusable fields")
        return {"node": node, "pinned": pinned, "placed": placed}

    def scaling_service(self, slug: str) -> dict:
        """(A manager) this host's facility service: {"slug", "node", "replicas", "tasks"}."""
        answer = self._call("GET", f"{API}/scaling/{check_slug(slug)}", None, self.timeout)
        tasks = answer.get("tasks")
        fields = ("id", "node", "state", "desired", "container_id", "error")
        if not (
            isinstance(answer.get("node"), str)
            and answer.get("replicas") in (0, 1)
            and isinstance(tasks, list)
            and all(
                isinstance(t, dict) and all(isinstance(t.get(k), str) for k in fields)
                for t in tasks
            )
        ):
            raise NodeError(f"node {self.address} answered a service with unusable fields")
        return {
            "slug": slug,
            "node": answer["node"],
            "replicas": answer["replicas"],
            "tasks": [{k: t[k] for k in fields} for t in tasks],
        }

    def scale(self, slug: str, replicas: int) -> int:
        """(A manager) scale this host's facility service to 0 or 1 replica."""
        answer = self._call(
            "POST", f"{API}/scaling/{check_slug(slug)}", {"replicas": replicas}, self.timeout
        )
        if answer.get("replicas") != replicas:
            raise NodeError(f"node {self.address} answered a scaling without its replicas")
        return replicas

    def cluster_nodes(self) -> dict:
        """(A manager) this host's node name and the ready nodes:
        {"node", "nodes": [{"name", "address", "manager"}]}."""
        answer = self._call("GET", f"{API}/cluster/nodes", None, self.timeout)
        node, nodes = answer.get("node"), answer.get("nodes")
        if not (
            isinstance(node, str)
            and NODE_NAME_RE.fullmatch(node)
            and isinstance(nodes, list)
            and len(nodes) <= MAX_NODES
            and all(_node_entry(n) for n in nodes)
        ):
            raise NodeError(f"node {self.address} answered its nodes with unusable fields")
        return {
            "node": node,
            "nodes": [{k: n[k] for k in ("name", "address", "manager")} for n in nodes],
        }

    def take_lock(self, slug: str) -> dict:
        """(A manager) the facility's cluster lock for this host's node, at once (else Busy):
        {"slug", "lock", "node" (where it is pinned), "stale" (this host's copy is stale)}."""
        answer = self._call("POST", f"{API}/locks/{check_slug(slug)}", {}, self.timeout)
        lock, node, stale = answer.get("lock"), answer.get("node"), answer.get("stale")
        if not (
            isinstance(lock, str)
            and LOCK_ID_RE.fullmatch(lock)
            and isinstance(node, str)
            and NODE_NAME_RE.fullmatch(node)
            and isinstance(stale, bool)
        ):
            raise NodeError(f"node {self.address} answered a lock with unusable fields")
        return {"slug": slug, "lock": lock, "node": node, "stale": stale}

    def renew_lock(self, slug: str, lock: str) -> None:
        """(A manager) keep the lock held for another lease; NodeError lock_lost if it is not."""
        self._call("PUT", f"{API}/locks/{check_slug(slug)}/{_lock_id(lock)}", {}, self.timeout)

    def release_lock(self, slug: str, lock: str) -> bool:
        """(A manager) release the lock; False if it was not held any more."""
        path = f"{API}/locks/{check_slug(slug)}/{_lock_id(lock)}"
        return self._call("DELETE", path, None, self.timeout).get("released") is True

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

    # Backups, moves and restores (the node side: provisioner/supervisor/node_api.py).

    def backup(self, slug: str, backup_id: str, key: bytes) -> dict:
        """Back the facility up into the node's held folder: {"manifest", "meta", "sizes"}."""
        body = {"backup_id": backup_id, "key": b64encode(key).decode()}
        answer = self._call(
            "POST", f"{API}/facilities/{check_slug(slug)}/backup", body, TRANSFER_SECONDS
        )
        if not all(isinstance(answer.get(k), dict) for k in ("manifest", "meta", "sizes")):
            raise NodeError(f"node {self.address} answered a backup without its fields")
        return answer

    def restore(self, slug: str, backup_id: str, key: bytes, tombstones: list[dict]) -> dict:
        """Restore a backup held on the node over the facility's stopped volumes."""
        body = {"backup_id": backup_id, "key": b64encode(key).decode(), "tombstones": tombstones}
        answer = self._call(
            "POST", f"{API}/facilities/{check_slug(slug)}/restore", body, TRANSFER_SECONDS
        )
        result = answer.get("result")
        if not isinstance(result, dict):
            raise NodeError(f"node {self.address} answered a restore without its result")
        return result

    def hold(self, slug: str, held: bool) -> dict:
        """Hold the facility (503 on every gateway, not woken) or let it run again."""
        return self._call(
            "POST", f"{API}/facilities/{check_slug(slug)}/hold", {"hold": held}, self.timeout
        )

    def release(self, slug: str) -> dict:
        """Destroy what the node holds of a facility that moved away (no deletion logged)."""
        return self._call(
            "POST", f"{API}/facilities/{check_slug(slug)}/release", {}, 2 * COMMAND_SECONDS
        )

    def forget(self, slug: str) -> dict:
        """The facility is deleted: the node destroys its backup keys and held backups of it."""
        return self._call("POST", f"{API}/facilities/{check_slug(slug)}/forget", {}, self.timeout)

    def held_backups(self) -> list[dict]:
        answer = self._call("GET", f"{API}/backups", None, self.timeout)
        rows = answer.get("backups")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise NodeError(f"node {self.address} answered GET /v1/backups without a list")
        return rows

    def drop_backup(self, backup_id: str) -> bool:
        return bool(
            self._call("DELETE", f"{API}/backups/{backup_id}", None, self.timeout).get("dropped")
        )

    def keep_key(self, record: dict) -> dict:
        """Keep a backup's key on the node (a manager): the record as backup_keys saves it."""
        fields = {k: record[k] for k in ("facility", "created", "expires", "expires_at", "key")}
        return self._call("PUT", f"{API}/backup-keys/{record['backup_id']}", fields, self.timeout)

    def destroy_key(self, backup_id: str) -> bool:
        answer = self._call("DELETE", f"{API}/backup-keys/{backup_id}", None, self.timeout)
        return bool(answer.get("destroyed"))

    def download(self, backup_id: str, name: str, sink: BinaryIO) -> int:
        """Copy one held file of a backup into `sink`; its size."""
        with self._file_response(backup_id, name) as (response, size):
            copied = 0
            while chunk := response.read(CHUNK):
                copied += len(chunk)
                if copied > size:
                    break
                sink.write(chunk)
        if copied != size:
            raise NodeUnreachable(f"node {self.address} sent {copied} of {size} bytes")
        return size

    def upload(self, backup_id: str, name: str, source: BinaryIO, size: int) -> int:
        """Hand the node one file of a backup (`size` bytes read from `source`)."""
        path = f"{API}/backups/{backup_id}/{name}"
        connection = _Connection(self.host, self.port, self.context, self.timeout)
        try:
            connection.connect()
            connection.request(
                "PUT",
                path,
                body=_Bounded(source, size),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                    "Connection": "close",
                },
            )
            response = connection.getresponse()
            raw = _read_bounded(response, time.monotonic() + self.timeout, self.address)
        except (OSError, http.client.HTTPException) as e:
            raise NodeUnreachable(
                f"node {self.address} did not take {name} ({type(e).__name__}: {e})"
            ) from e
        finally:
            connection.close()
        answer = self._answer(response.status, raw)
        if answer.get("bytes") != size:
            raise NodeError(f"node {self.address} kept {answer.get('bytes')} of {size} bytes")
        return size

    def copy_backup_to(self, other: NodeClient, backup_id: str, name: str) -> int:
        """Stream one held file of a backup from this node to `other`, through this host."""
        with self._file_response(backup_id, name) as (response, size):
            return other.upload(backup_id, name, response, size)

    @contextmanager
    def _file_response(self, backup_id: str, name: str) -> Iterator[tuple]:
        connection = _Connection(self.host, self.port, self.context, self.timeout)
        try:
            try:
                connection.connect()
                connection.request("GET", f"{API}/backups/{backup_id}/{name}")
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise NodeUnreachable(
                    f"node {self.address} did not send {name} ({type(e).__name__}: {e})"
                ) from e
            if response.status != 200:
                raw = _read_bounded(response, time.monotonic() + self.timeout, self.address)
                self._answer(response.status, raw)
                raise NodeError(f"node {self.address} answered HTTP {response.status}")
            length = response.getheader("Content-Length") or ""
            if not length.isdigit():
                raise NodeError(f"node {self.address} sent {name} without its length")
            yield response, int(length)
        finally:
            connection.close()

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


class _Bounded:
    """At most `size` bytes of a stream, read as http.client sends a body."""

    def __init__(self, source: BinaryIO, size: int):
        self.source, self.left = source, size

    def read(self, amount: int = CHUNK) -> bytes:
        if self.left <= 0:
            return b""
        chunk = self.source.read(min(amount, self.left, CHUNK))
        if not chunk:
            raise ConnectionError("the backup file ended before its length")
        self.left -= len(chunk)
        return chunk


def _node_entry(entry: object) -> bool:
    """One node of a manager's list: a node's name, its API's IPv4[:port], a manager or not."""
    if not isinstance(entry, dict) or set(entry) != {"name", "address", "manager"}:
        return False
    name, address = entry["name"], entry["address"]
    if not (isinstance(name, str) and NODE_NAME_RE.fullmatch(name)):
        return False
    if not isinstance(entry["manager"], bool) or not isinstance(address, str):
        return False
    try:
        split_address(address[:64])
    except InvalidArgument:
        return False
    return len(address) <= 64


def _lock_id(lock: str) -> str:
    if not LOCK_ID_RE.fullmatch(lock):
        raise InvalidArgument("a lock's id is 1 to 64 lowercase letters and digits")
    return lock


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

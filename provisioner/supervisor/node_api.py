"""The node API: what a cluster manager asks of this node, over mutual TLS (NODE_API_PORT).

Only a client showing a certificate of the cluster CA that carries CLUSTER_PEER_NAME is served.
Each connection is handled by one of a few worker threads with bounded time and body size, so a
slow or hostile client holds at most one worker for a while and never the supervisor's loop.

    GET    /v1/node                          {"node", "facilities", "awake", "memory"}
    PUT    /v1/facilities/<slug>             {"labels": {...}}  -> {"slug", "created"}
    POST   /v1/facilities/<slug>/manage      {"command": [...]} -> {"result": {...}}
    POST   /v1/facilities/<slug>/lifecycle   {"action": "sleep"...} -> {"slug", "status"}
    DELETE /v1/facilities/<slug>                                -> {"slug", "shredded", ...}
    PUT    /v1/routes                        {"generation", "facilities"} -> {"generation", ...}
    POST   /v1/tombstones                    {"facility", "tombstones"} -> {"facility", "added"}
    DELETE /v1/tombstones/<slug>                                -> {"facility", "forgotten"}

A manager scales a worker's own facilities for it (provisioner/supervisor/scaling.py):

    POST   /v1/scaling                       {"slugs": [...]} -> {"node", "pinned", "placed"}
    GET    /v1/scaling/<slug>                   -> {"slug", "node", "replicas", "tasks"}
    POST   /v1/scaling/<slug>                {"replicas": 0|1} -> {"slug", "replicas"}

and hands a worker what its scheduled backups and stale copies need of a manager:

    GET    /v1/cluster/nodes                 -> {"node", "nodes": [{"name", "address", "manager"}]}
    POST   /v1/locks/<slug>                  {} -> {"slug", "lock", "node", "stale"}
    PUT    /v1/locks/<slug>/<lock>           {} -> {"slug", "lock"}
    DELETE /v1/locks/<slug>/<lock>              -> {"slug", "released"}

Backups, moves and restores (provisioner/host/backup_transfer.py):

    POST   /v1/facilities/<slug>/backup      {"backup_id", "key"} -> {"manifest", "meta", "sizes"}
    POST   /v1/facilities/<slug>/restore     {"backup_id", "key", "tombstones"} -> {"result"}
    POST   /v1/facilities/<slug>/hold        {"hold": bool}       -> {"slug", "held"}
    POST   /v1/facilities/<slug>/release     {}                   -> {"slug", "shredded"}
    POST   /v1/facilities/<slug>/forget      {}                   -> {"slug", "keys", "held"}
    GET    /v1/backups                                            -> {"backups": [...]}
    DELETE /v1/backups/<id>                                       -> {"dropped"}
    GET    /v1/backups/<id>/<file>           the file's bytes
    PUT    /v1/backups/<id>/<file>           the file's bytes (Content-Length) -> {"bytes"}
    PUT    /v1/backup-keys/<id>              {"facility", "created", "expires", "expires_at", "key"}
    DELETE /v1/backup-keys/<id>                                   -> {"destroyed"}

Errors: {"error": {"code", "message"}} with the status below.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import shutil
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from medcell_common import strictjson
from medcell_common import tombstones as tombstone_format
from medcell_common.interfaces import CLUSTER_PEER_NAME, SUPERVISOR_CLUSTER_TLS_DIR
from provisioner.host import backup_keys, backup_transfer, facility_data, locks, routes, tombstones
from provisioner.host.cluster_ca import cluster_dir
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.engine import FacilityEngine
from provisioner.host.errors import (
    Busy,
    DockerError,
    FacilityCommandFailed,
    FacilityNotFound,
    FacilityStopped,
    InvalidArgument,
    StaleRoutes,
    WakeFailed,
)
from provisioner.host.node_api import API, MAX_BODY_BYTES, MAX_TOMBSTONES, tls_files
from provisioner.host.swarm import Swarm
from provisioner.host.validation import check_slug
from provisioner.supervisor.logs import event
from provisioner.supervisor.scaling import Forbidden, LockLost, ManagerScaling

WORKERS = 4  # connections served at once
MAX_PENDING = 32  # connections served or waiting for a worker; more are closed at once
READ_SECONDS = 10.0  # the TLS handshake and the whole request must arrive within this
LOCK_WAIT = 30.0  # for the facility's lock (a sleep or wake of it by this supervisor)
MAX_FACILITIES = 100_000  # in one routes map
RETRY_AFTER = "5"
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

STATUS = {
    "invalid": 400,
    "unknown_command": 400,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "length_required": 411,
    "too_large": 413,
    "stale_generation": 409,
    "lock_lost": 409,
    "command_failed": 409,
    "facility_stopped": 409,
    "busy": 503,
    "wake_failed": 503,
    "docker_error": 503,
    "internal": 500,
}

log = logging.getLogger("medcell.supervisor")


class ApiError(Exception):
    """A request the API itself refuses (path, method, command), with its error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _error(code: str, message: str) -> tuple[int, dict]:
    return STATUS[code], {"error": {"code": code, "message": message}}


class NodeService:
    """Decides each answer; the HTTP layer below only carries it."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        engine: FacilityEngine | None = None,
        restored: Callable[[str], None] = lambda slug: None,
    ):
        self.config, self.backend = config, backend
        # Told of each facility restored here (its deletion totals were counted where they grew).
        self.restored = restored
        # The supervisor's engine for this node's facilities (a Swarm service is scaled through
        # a manager); None: this node's facilities cannot be slept, woken, stopped or started.
        self.facility_engine = engine
        self._engine = None
        self.apply_timeout = routes.APPLY_TIMEOUT  # for this node's gateway to serve a new map
        self.scaling = ManagerScaling(config, lambda: Swarm(backend.client))

    @property
    def node(self) -> str:
        return self._engine_info().name

    def _engine_info(self):
        if self._engine is None:  # asked once: a node's name and memory do not change
            self._engine = self.backend.engine()
        return self._engine

    def handle(self, method: str, path: str, body: object, peer: str = "") -> tuple[int, dict]:
        """Route one request; every known failure becomes its error answer. `peer`: the common
        name of the client's certificate (which node asks)."""
        return self.handle_call(self._route, method, path, body, peer)

    def handle_call(self, call, *args) -> tuple[int, object]:
        """`call(*args)` with every known failure as its error answer."""
        try:
            return 200, call(*args)
        except ApiError as e:
            return _error(e.code, e.message)
        except Forbidden as e:
            return _error("forbidden", str(e))
        except LockLost as e:
            return _error("lock_lost", str(e))
        except InvalidArgument as e:
            return _error("invalid", str(e))
        except FacilityNotFound as e:
            return _error("not_found", str(e))
        except StaleRoutes as e:
            return _error("stale_generation", str(e))
        except Busy as e:
            return _error("busy", str(e))
        except FacilityCommandFailed as e:
            return _error("command_failed", str(e))
        except FacilityStopped as e:
            return _error("facility_stopped", str(e))
        except WakeFailed as e:
            return _error("wake_failed", str(e))
        except DockerError as e:
            return _error("docker_error", str(e))
        except Exception:
            log.exception("node_api_error", extra={"fields": {"event": "node_api_error"}})
            return _error("internal", "the node could not do that; see its supervisor's log")

    def _route(self, method: str, path: str, body: object, peer: str = "") -> dict:
        parts = path.split("/")
        if path == f"{API}/scaling":
            self._method(method, "POST")
            return self.scaling.lookup(peer, body)
        if path.startswith(f"{API}/scaling/") and len(parts) == 4:
            slug = check_slug(parts[3])
            self._method(method, "GET", "POST")
            if method == "GET":
                return self.scaling.service(peer, slug)
            return self.scaling.scale(peer, slug, body)
        if path == f"{API}/cluster/nodes":
            self._method(method, "GET")
            return self.scaling.nodes(peer)
        if path.startswith(f"{API}/locks/") and len(parts) in (4, 5):
            slug = check_slug(parts[3])
            if len(parts) == 4:
                self._method(method, "POST")
                return self.scaling.take_lock(peer, slug, body)
            self._method(method, "PUT", "DELETE")
            if method == "PUT":
                return self.scaling.renew_lock(peer, slug, parts[4], body)
            return self.scaling.release_lock(peer, slug, parts[4])
        if path == f"{API}/node":
            self._method(method, "GET")
            return self.info()
        if path == f"{API}/routes":
            self._method(method, "PUT")
            return self.routes(body)
        if path == f"{API}/tombstones":
            self._method(method, "POST")
            return self.add_tombstones(body)
        if path.startswith(f"{API}/tombstones/") and len(parts) == 4:
            self._method(method, "DELETE")
            return self.forget_tombstones(check_slug(parts[3]))
        if path.startswith(f"{API}/facilities/") and len(parts) in (4, 5):
            slug = check_slug(parts[3])
            if len(parts) == 4:
                self._method(method, "PUT", "DELETE")
                return self.prepare(slug, body) if method == "PUT" else self.destroy(slug)
            if parts[4] == "manage":
                self._method(method, "POST")
                return self.manage(slug, body)
            if parts[4] == "lifecycle":
                self._method(method, "POST")
                return self.lifecycle(slug, body)
        found = self._route_backups(method, parts, body)
        if found is not None:
            return found
        raise ApiError("not_found", "no such endpoint; see the node API in docs/architecture.md")

    @staticmethod
    def _method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError("method_not_allowed", f"use {' or '.join(allowed)} here")

    def info(self) -> dict:
        engine = self._engine_info()
        return {
            "node": engine.name,
            "facilities": facility_data.local_slugs(self.config, self.backend),
            "awake": facility_data.awake_count(self.config, self.backend),
            "memory": engine.memory,
        }

    def prepare(self, slug: str, body: object) -> dict:
        meta = facility_data.check_meta(_field(body, "labels", ("labels",)))
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            result = facility_data.prepare(self.config, self.backend, slug, meta)
        event("node_prepared", slug=slug, created=len(result["created"]))
        return result

    def manage(self, slug: str, body: object) -> dict:
        command = _field(body, "command", ("command",))
        if (
            isinstance(command, list)
            and command
            and command[0] not in facility_data.MANAGE_COMMANDS
        ):
            raise ApiError(
                "unknown_command",
                f"a node runs only {', '.join(facility_data.MANAGE_COMMANDS)}",
            )
        command = facility_data.check_command(command)
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            facility_data.require(self.config, self.backend, slug)
            result = facility_data.manage(self.config, self.backend, slug, command)
        event("node_managed", slug=slug, command=command[0])
        return {"result": result}

    def lifecycle(self, slug: str, body: object) -> dict:
        action = _field(body, "action", ("action",))
        if action not in facility_data.LIFECYCLE_ACTIONS:
            raise InvalidArgument(
                f"action must be one of {', '.join(facility_data.LIFECYCLE_ACTIONS)}"
            )
        if self.facility_engine is None:
            raise DockerError("this node's supervisor does not run in cluster mode")
        facility_data.require(self.config, self.backend, slug)
        status = facility_data.change(
            self.config, self.facility_engine, slug, str(action), lock_wait=LOCK_WAIT
        )
        event("node_lifecycle", slug=slug, action=action, status=status)
        return {"slug": slug, "status": status}

    def destroy(self, slug: str) -> dict:
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            # What the facility said when its wipe failed is not logged: it may be anything.
            result = facility_data.destroy(
                self.config,
                self.backend,
                slug,
                lambda _: event("node_wipe_without_receipt", logging.WARNING, slug=slug),
            )
        event("node_destroyed", slug=slug, shredded=result["shredded"])
        return result

    def add_tombstones(self, body: object) -> dict:
        """Keep another node's tombstones (this node is a manager): every one checked, the
        whole request refused if one is not a tombstone."""
        fields = ("facility", "tombstones")
        slug = _field(body, "facility", fields)
        if not isinstance(slug, str):
            raise InvalidArgument("facility must be a slug")
        slug = check_slug(slug)
        items = _field(body, "tombstones", fields)
        if isinstance(items, list) and len(items) > MAX_TOMBSTONES:
            raise InvalidArgument(f"more than {MAX_TOMBSTONES} tombstones in one request")
        try:
            items = tombstone_format.check_all(items)
        except ValueError as e:
            raise InvalidArgument(f"tombstones: {e}") from e
        added = tombstones.FileTombstones(self.config).add(slug, items)
        if added:
            event("tombstones_received", slug=slug, added=added)  # counts only
        return {"facility": slug, "added": added}

    def forget_tombstones(self, slug: str) -> dict:
        """A deleted facility's tombstones guard nothing any more: forget them here."""
        forgotten = tombstones.FileTombstones(self.config).prune(slug, None)
        event("tombstones_forgotten", slug=slug, forgotten=forgotten)
        return {"facility": slug, "forgotten": forgotten}

    def routes(self, body: object) -> dict:
        generation = _field(body, "generation", ("generation", "facilities"))
        try:
            generation = strictjson.integer(generation, "generation", low=1)
        except strictjson.StrictJSONError as e:
            raise InvalidArgument(str(e)) from e
        facilities = check_map(_field(body, "facilities", ("generation", "facilities")))
        applied = routes.set_cluster_map(self.config, self.node, generation, facilities)
        local = sum(1 for entry in facilities.values() if entry["node"] == self.node)
        # Answered once this node's gateway serves the map (a facility just created elsewhere
        # must not get 404 from this node's gateway after `create` said it is ready); a gateway
        # that lags is reported, and one that does not run reads the whole map when it starts.
        served = True
        if self.facility_engine is not None and self.facility_engine.gateway_running():
            served = routes.wait_applied(self.config, applied, timeout=self.apply_timeout)
        event(
            "node_routes",
            generation=generation,
            facilities=len(facilities),
            local=local,
            served=served,
        )
        return {
            "generation": generation,
            "routes_generation": applied,
            "remote": len(facilities) - local,
            "served": served,
        }

    # Backups, moves and restores: the sealed files stay on the nodes, the keys on the managers.

    def _route_backups(self, method: str, parts: list[str], body: object) -> dict | None:
        if len(parts) == 5 and parts[2] == "facilities" and parts[4] in FACILITY_ACTIONS:
            self._method(method, "POST")
            return getattr(self, f"facility_{parts[4]}")(check_slug(parts[3]), body)
        if parts[2:] == ["backups"]:
            self._method(method, "GET")
            return {"backups": backup_transfer.held(self.config)}
        if len(parts) == 4 and parts[2] == "backups":
            self._method(method, "DELETE")
            return {"dropped": backup_transfer.drop(self.config, parts[3])}
        if len(parts) == 4 and parts[2] == "backup-keys":
            backup_id = backup_transfer.check_backup_id(parts[3])
            self._method(method, "PUT", "DELETE")
            if method == "DELETE":
                return {"destroyed": backup_keys.destroy(self.config, backup_id)}
            return self.keep_key(backup_id, body)
        return None

    def facility_backup(self, slug: str, body: object) -> dict:
        allowed = ("backup_id", "key")
        backup_id = backup_transfer.check_backup_id(_field(body, "backup_id", allowed))
        key = backup_transfer.check_key(_field(body, "key", allowed))
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            result = backup_transfer.make(self.config, self.backend, slug, backup_id, key)
        event("node_backup", slug=slug, bytes=sum(result["sizes"].values()))
        return result

    def facility_restore(self, slug: str, body: object) -> dict:
        allowed = ("backup_id", "key", "tombstones")
        backup_id = backup_transfer.check_backup_id(_field(body, "backup_id", allowed))
        key = backup_transfer.check_key(_field(body, "key", allowed))
        items = backup_transfer.check_tombstones(_field(body, "tombstones", allowed))
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            self.restored(slug)  # before it runs again and is probed
            result = backup_transfer.restore(self.config, self.backend, slug, backup_id, key, items)
        event("node_restored", slug=slug, tombstones=len(items))
        return {"result": result}

    def facility_hold(self, slug: str, body: object) -> dict:
        held = _field(body, "hold", ("hold",))
        if not isinstance(held, bool):
            raise InvalidArgument("hold is true or false")
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            result = backup_transfer.hold(self.config, slug, held)
        event("node_hold", slug=slug, held=held)
        return result

    def facility_release(self, slug: str, body: object) -> dict:
        if body != {}:
            raise InvalidArgument("release takes an empty object")
        with locks.facility_lock(self.config, slug, wait=LOCK_WAIT):
            result = facility_data.destroy(
                self.config, self.backend, slug, lambda _: None, log=False
            )
        event("node_released", slug=slug, shredded=result["shredded"])
        return {"slug": slug, "shredded": result["shredded"]}

    def facility_forget(self, slug: str, body: object) -> dict:
        """The facility is deleted: no backup of it may open, none is kept here."""
        if body != {}:
            raise InvalidArgument("forget takes an empty object")
        keys = backup_keys.destroy_for(self.config, slug)
        held = [r for r in backup_transfer.held(self.config) if r["facility"] == slug]
        dropped = sum(backup_transfer.drop(self.config, r["backup_id"]) for r in held)
        event("node_forgot", slug=slug, keys=keys, held=dropped)
        return {"slug": slug, "keys": keys, "held": dropped}

    def keep_key(self, backup_id: str, body: object) -> dict:
        allowed = ("facility", "created", "expires", "expires_at", "key")
        fields = {name: _field(body, name, allowed) for name in allowed}
        check_slug(fields["facility"])
        for name in ("created", "expires"):
            if not isinstance(fields[name], str) or not ISO_RE.fullmatch(fields[name]):
                raise InvalidArgument(f"{name} is a UTC time like 2026-12-05T13:18:16Z")
        try:
            expires_at = strictjson.integer(fields["expires_at"], "expires_at", low=1)
        except strictjson.StrictJSONError as e:
            raise InvalidArgument(str(e)) from e
        record = backup_keys.BackupKey(
            backup_id,
            fields["facility"],
            fields["created"],
            fields["expires"],
            expires_at,
            backup_transfer.check_key(fields["key"]),
        )
        backup_keys.save(self.config, record)
        event("node_backup_key", facility=record.facility)
        return {"backup_id": backup_id, "kept": True}

    def open_backup_file(self, backup_id: str, name: str):
        return backup_transfer.open_file(self.config, backup_id, name)

    def receive_backup_file(self, backup_id: str, name: str, chunks, length: int) -> dict:
        written = backup_transfer.receive(self.config, backup_id, name, chunks, length)
        event("node_backup_received", bytes=written)
        return {"bytes": written}


FACILITY_ACTIONS = ("backup", "restore", "hold", "release", "forget")
ISO_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
BACKUP_FILE_RE = re.compile(r"^/v1/backups/([0-9a-f]{16})/([a-z]+\.[a-z]+)$")


def _field(body: object, name: str, allowed: tuple[str, ...]) -> object:
    """One field of a JSON object body that holds only the allowed ones."""
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    unknown = sorted(str(k)[:40] for k in body if k not in allowed)
    if unknown:
        raise InvalidArgument(f"unknown fields {', '.join(unknown)}; known: {', '.join(allowed)}")
    if name not in body:
        raise InvalidArgument(f"the body needs {name}")
    return body[name]


def check_map(facilities: object) -> dict[str, dict[str, str]]:
    """{slug: {"node": <name>, "address": <IPv4>}}, each field checked."""
    if not isinstance(facilities, dict):
        raise InvalidArgument("facilities must be an object {slug: {node, address}}")
    if len(facilities) > MAX_FACILITIES:
        raise InvalidArgument(f"more than {MAX_FACILITIES} facilities in one map")
    checked = {}
    for slug, entry in facilities.items():
        check_slug(slug)
        if not isinstance(entry, dict) or set(entry) != {"node", "address"}:
            raise InvalidArgument(f"facility {slug}: give exactly node and address")
        node, address = entry["node"], entry["address"]
        if not isinstance(node, str) or not NODE_NAME_RE.fullmatch(node):
            raise InvalidArgument(f"facility {slug}: node is not a node name")
        try:
            ip = ipaddress.IPv4Address(address) if isinstance(address, str) else None
        except ValueError:
            ip = None
        if ip is None or str(ip) != address or ip.is_unspecified or ip.is_multicast:
            raise InvalidArgument(f"facility {slug}: address is not a node's IPv4 address")
        checked[slug] = {"node": node, "address": address}
    return checked


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "medcell-node"
    sys_version = ""
    timeout = READ_SECONDS
    server: NodeServer

    def do_GET(self) -> None:
        self._serve(with_body=False)

    def do_DELETE(self) -> None:
        self._serve(with_body=False)

    def do_PUT(self) -> None:
        self._serve(with_body=True)

    def do_POST(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._send(*_error("method_not_allowed", "HEAD is not served"))

    do_PATCH = do_OPTIONS = do_HEAD

    def _serve(self, with_body: bool) -> None:
        body = None
        if "?" in self.path or "#" in self.path:
            self._send(*_error("not_found", "no query strings here"))
            return
        if BACKUP_FILE_RE.fullmatch(self.path):
            self._serve_file()
            return
        if with_body:
            answer = self._read_body()
            if isinstance(answer, tuple):
                self._send(*answer)
                return
            body = answer
        self.server.request_read()  # from here on the answer may take as long as its work
        peer = getattr(self.server._local, "peer", "")
        self._send(*self.server.service.handle(self.command, self.path, body, peer))

    def _serve_file(self) -> None:
        """A sealed backup file, streamed out (GET) or in (PUT, its Content-Length exactly)."""
        backup_id, name = BACKUP_FILE_RE.fullmatch(self.path).groups()
        service = self.server.service
        if self.command not in ("GET", "PUT"):
            self._send(*_error("method_not_allowed", "use GET or PUT here"))
            return
        if self.command == "PUT":
            length = self.headers.get("Content-Length", "")
            if self.headers.get("Transfer-Encoding") or not length.isdigit():
                self._send(*_error("length_required", "send the file with a Content-Length"))
                return
            self.server.request_read()  # a large file takes its time; each read is bounded
            chunks = _chunks(self.rfile, int(length))
            self._send(
                *service.handle_call(
                    service.receive_backup_file, backup_id, name, chunks, int(length)
                )
            )
            return
        self.server.request_read()
        status, opened = service.handle_call(service.open_backup_file, backup_id, name)
        if status != 200:
            self._send(status, opened)
            return
        handle, size = opened
        with handle:
            self.request_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            shutil.copyfileobj(handle, self.wfile, backup_transfer.CHUNK)
        self.close_connection = True

    def _read_body(self) -> object:
        if self.headers.get("Transfer-Encoding"):
            return _error("length_required", "send the body with a Content-Length")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return _error("length_required", "send the body with a Content-Length")
        if int(length) > MAX_BODY_BYTES:
            return _error("too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            raise ConnectionError("the client sent less than it announced")
        try:
            return strictjson.loads(data)
        except strictjson.StrictJSONError:
            return _error("invalid", "the body is not JSON")

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.request_version = "HTTP/1.1"  # never HTTP/0.9's bare body: every answer has a status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        if status == 503:
            self.send_header("Retry-After", RETRY_AFTER)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # What http.server itself refuses (a malformed request line, headers too long or too
        # many, a method it has no handler for) gets the same JSON shape as everything else.
        name = {414: "too_large", 431: "too_large", 501: "method_not_allowed"}.get(code, "invalid")
        self.close_connection = True
        self._send(code, {"error": {"code": name, "message": message or "bad request"}})

    def log_message(self, format: str, *args) -> None:
        pass  # the service logs content-free events itself


class NodeServer(socketserver.TCPServer):
    """HTTPS with client certificates; a few workers; a time limit on reading each request."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        tls_dir: Path,
        service: NodeService,
        workers: int = WORKERS,
        max_pending: int = MAX_PENDING,
        read_seconds: float = READ_SECONDS,
    ):
        self.context = server_context(tls_dir)
        self.service = service
        self.max_pending, self.read_seconds = max_pending, read_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="node-api")
        self._pending = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def pending(self) -> int:
        """Connections being served or waiting for a worker."""
        with self._count_lock:
            return self._pending

    def process_request(self, request: socket.socket, client_address) -> None:
        # Called in the accept loop: only hand over; TLS and HTTP happen in a worker.
        with self._count_lock:
            full = self._pending >= self.max_pending
            if not full:
                self._pending += 1
        if full:
            event("node_api_refused", reason="connections")
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._serve, request, client_address)
        except RuntimeError:  # shutting down
            self._release()
            self.shutdown_request(request)

    def _serve(self, request: socket.socket, client_address) -> None:
        # The whole request (handshake, line, headers, body) must arrive in read_seconds; after
        # that the socket is shut, which ends any read still waiting on it.
        held = {"socket": request}  # the TLS socket once wrapped (wrapping detaches the plain one)
        timer = threading.Timer(self.read_seconds, _shut, (held,))
        timer.daemon = True
        timer.start()
        self._local.timer = timer
        try:
            request.settimeout(self.read_seconds)
            tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            held["socket"] = tls
            tls.do_handshake()
            if not _cluster_peer(tls.getpeercert()):
                event("node_api_refused", reason="certificate")
                return
            self._local.peer = _common_name(tls.getpeercert())
            self.finish_request(tls, client_address)
        except (OSError, ValueError):
            pass  # a handshake refused, a client gone or too slow: nothing to answer
        finally:
            timer.cancel()
            self.shutdown_request(held["socket"])
            self._release()

    def request_read(self) -> None:
        """The handler has its whole request: the read deadline no longer applies."""
        timer = getattr(self._local, "timer", None)
        if timer is not None:
            timer.cancel()

    def _release(self) -> None:
        with self._count_lock:
            self._pending -= 1

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _chunks(rfile, length: int):
    """Exactly `length` bytes of a request body, a chunk at a time (each read bounded by the
    socket's timeout); a client that stops early ends it with ConnectionError."""
    left = length
    while left > 0:
        chunk = rfile.read(min(left, backup_transfer.CHUNK))
        if not chunk:
            raise ConnectionError("the client sent less than it announced")
        left -= len(chunk)
        yield chunk


def _shut(held: dict) -> None:
    # The plain socket's shutdown, also under TLS: it ends a read waiting in another thread.
    try:
        socket.socket.shutdown(held["socket"], socket.SHUT_RDWR)
    except OSError:
        pass


def _cluster_peer(cert: dict | None) -> bool:
    names = (cert or {}).get("subjectAltName", ())
    return ("DNS", CLUSTER_PEER_NAME) in names


def _common_name(cert: dict | None) -> str:
    """The subject's common name of the verified client certificate ("" if none)."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """TLS 1.2+ with this node's certificate; clients must show one of the cluster CA."""
    ca, cert, key = tls_files(tls_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(cafile=str(ca))
    return context


def node_tls_dir(config: Config) -> Path:
    """Where this node's TLS files are: in the supervisor's container they are mounted, file by
    file, at SUPERVISOR_CLUSTER_TLS_DIR (its view of the cluster folder, which holds the CA key
    on the first manager, is masked); a supervisor run on the host reads the cluster folder."""
    mounted = Path(SUPERVISOR_CLUSTER_TLS_DIR)
    if all(path.is_file() for path in tls_files(mounted)):
        return mounted
    return cluster_dir(config.home)


def in_cluster(config: Config) -> bool:
    """Whether this host holds its cluster TLS material (`cluster init` or `join` wrote it)."""
    return all(path.is_file() for path in tls_files(node_tls_dir(config)))


def start(
    config: Config,
    backend: DockerBackend,
    engine: FacilityEngine | None = None,
    restored: Callable[[str], None] = lambda slug: None,
) -> NodeServer | None:
    """Serve the node API in its own thread, if this host is a cluster node; else None.

    A node API that cannot start (its port taken, its certificates unreadable) is logged, and
    the supervisor goes on with this node's own duties: deletions must still happen on time.
    """
    if not in_cluster(config):
        if node_tls_dir(config).is_dir():  # begun but incomplete: say so, once
            missing = [p.name for p in tls_files(node_tls_dir(config)) if not p.is_file()]
            event("node_api_off", logging.WARNING, missing=",".join(missing))
        return None
    try:
        server = NodeServer(
            config.node_api_bind,
            node_tls_dir(config),
            NodeService(config, backend, engine, restored),
        )
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        event("node_api_failed", logging.ERROR, error=type(e).__name__, detail=str(e)[:200])
        return None
    threading.Thread(target=server.serve_forever, name="node-api", daemon=True).start()
    event("node_api_started", port=server.port)
    return server

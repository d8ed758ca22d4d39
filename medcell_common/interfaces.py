"""The names the images share, written once: states, the routes file and its acknowledgement,
the wake API's answers, a facility's status fields, the `X-Medcell-*` headers and Docker labels.

Each side imports these instead of spelling the strings itself. The enums are `StrEnum`s, so a
member equals (and JSON-encodes as) its plain string: files and answers stay exactly as before.
"""

from enum import StrEnum


class Status(StrEnum):
    """A facility's status as the CLI reports it (`facility list`, `show`, `status`)."""

    RUNNING = "running"
    ASLEEP = "asleep"
    STOPPED = "stopped"
    UNHEALTHY = "unhealthy"


class RouteState(StrEnum):
    """A facility's state in the routes file: how the gateway answers its requests."""

    RUNNING = "running"  # proxied to its socket
    ASLEEP = "asleep"  # held by the activator, which asks the supervisor to wake it
    STOPPED = "stopped"  # 503 with Retry-After
    # In a cluster: a facility on another node, forwarded to that node's gateway over mutual TLS.
    # Its entry also names the node and the address of its gateway's peer listener:
    #   {"state": "remote", "node": "<node name>", "address": "<IPv4>"}
    REMOTE = "remote"


class Desired(StrEnum):
    """What the operator wants of a facility (its state file's `desired`)."""

    RUNNING = "running"
    STOPPED = "stopped"


class Health(StrEnum):
    """What the supervisor last saw of a facility (its state file's `health`)."""

    OK = "ok"
    UNHEALTHY = "unhealthy"


# routes.json v2 (provisioner and supervisor write it, the gateway reads it):
#   {"version": 2, "generation": N, "facilities": {"<slug>": {"state": "<RouteState>"}}}
# and the gateway's acknowledgement, run/gateway/applied.json: {"generation": N}, written once
# nginx serves that generation.
ROUTES_FILE = "routes.json"
ROUTES_VERSION = 2
APPLIED_FILE = "applied.json"


# Cluster mode: every node's certificate (signed by the cluster CA) carries this DNS name beside
# its own; gateways and node APIs verify a peer by it, so a certificate from anywhere else fails.
CLUSTER_PEER_NAME = "node.medcell.cluster"
GATEWAY_PEER_PORT = 8444  # each node's gateway takes forwarded requests from the others here
NODE_API_PORT = 9445  # each node's supervisor takes node operations from the managers here


# The wake API on the supervisor's unix socket: `POST /wake/<slug>`, answered 200
# {"slug", "state": "running"}, or an error {"error": {"code": <WakeError>, "message"}}.
WAKE_PATH = "/wake/"
# Sent with it by the gateway's activator: how long (whole milliseconds) it has held the oldest
# request waiting for this wake, so that medcell_wake_seconds lasts from the first request.
HELD_HEADER = "X-Medcell-Held-Ms"


class WakeError(StrEnum):
    """The wake API's error codes, and the HTTP status each comes with."""

    NOT_FOUND = "not_found"  # 404
    FACILITY_STOPPED = "facility_stopped"  # 409: the operator stopped it; nothing wakes it
    BUSY = "busy"  # 503: too many wakes queued
    NO_ROOM = "no_room"  # 503: the host holds as many awake facilities as it may
    WAKE_FAILED = "wake_failed"  # 503


WAKE_STATUS = {
    WakeError.NOT_FOUND: 404,
    WakeError.FACILITY_STOPPED: 409,
    WakeError.BUSY: 503,
    WakeError.NO_ROOM: 503,
    WakeError.WAKE_FAILED: 503,
}


class StatusField(StrEnum):
    """The fields of a facility's socket-only status answer (`GET /status` on its socket)."""

    INFLIGHT = "inflight"
    REQUESTS = "requests"
    IDLE_SECONDS = "idle_seconds"
    BUSY = "busy"
    NEXT_DEADLINE = "next_deadline"
    OUTBOX = "outbox"
    OPENS = "opens"
    DELETIONS = "deletions"  # content-free totals since the facility began (DeletionField)
    STORAGE = "storage"  # {"used_bytes", "quota_bytes"}: its database in use, and its quota


class DeletionField(StrEnum):
    """The fields of a status answer's `deletions`: running totals, never which conversation."""

    REASONS = "reasons"  # {reason (medcell_common.receipts.REASONS): conversations deleted}
    # expired conversations by lateness: a count per DELETION_LAG_BUCKETS bound, then the rest
    LAG_BUCKETS = "lag_buckets"
    LAG_SUM_MS = "lag_sum_ms"  # their lateness added up, in milliseconds


# The gateway's request categories (gateway/templates/maps.conf, $gw_category) and the upper
# bounds (seconds) of its request-duration buckets: what its request counts carry.
GATEWAY_REQUEST_CATEGORIES = ("gateway", "api", "patient-link", "static", "health", "page")
GATEWAY_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Where the gateway writes those counts, in its run directory (read by the same host's supervisor).
GATEWAY_REQUESTS_FILE = "requests.json"

# Upper bounds (seconds after expires_at) of the deletion-lag buckets; the promise is 60 s.
DELETION_LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


# Headers between the gateway and what is behind it. The gateway sets SLUG_HEADER (replacing
# anything a client sent under that name) on requests it hands to its activator; a page's live
# update polls carry POLL_HEADER: 1, which does not count as activity.
SLUG_HEADER = "X-Medcell-Slug"
POLL_HEADER = "X-Medcell-Poll"


class Label(StrEnum):
    """Docker label keys on the objects medcell makes."""

    INSTANCE = "medcell.instance"  # the installation (its prefix)
    FACILITY = "medcell.facility"  # the facility's slug
    ROLE = "medcell.role"  # facility, data, keys, gateway, supervisor, network …
    CONFIG = "medcell.config"  # a fingerprint of the spec a container was made from
    IMAGE = "medcell.image"  # the id of the image a facility's container was made from
    NAME = "medcell.name"  # data volume: the facility's display name
    RETENTION = "medcell.retention"  # data volume: its initial retention
    IDLE = "medcell.idle"  # data volume: its idle timeout, if set at create
    CREATED = "medcell.created"  # data volume: when it was created


# Cluster mode: where a node's gateway and supervisor tasks read that node's cluster TLS files
# (ca.crt, node.crt, node.key; never the CA key), read-only. The gateway's are its own copy in its
# configuration folder (it runs as its own uid); the supervisor's are the node's files.
GATEWAY_CLUSTER_TLS_DIR = "/etc/medcell-gateway/cluster"
SUPERVISOR_CLUSTER_TLS_DIR = "/run/medcell/cluster"

"""What medcell's containers look like: images, users, mounts, limits, labels, environment."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from medcell_common import tombstones as tombstone_format
from medcell_common.interfaces import GATEWAY_CLUSTER_TLS_DIR, Label
from provisioner.host.config import FACILITY_UID, Config, Facility, idle_text
from provisioner.host.docker_backend import ContainerSpec, Limits
from provisioner.host.seccomp import facility_profile

FACILITY_USER = f"{FACILITY_UID}:{FACILITY_UID}"
FACILITY_RUN_DIR = "/run/medcell"
TOMBSTONE_DROP_DIR = tombstone_format.DROP_DIR
FACILITY_BIND = f"unix:{FACILITY_RUN_DIR}/app.sock"
GATEWAY_HTTPS_PORT = 8443
GATEWAY_HTTP_PORT = 8080
GATEWAY_CONFIG_DIR = "/etc/medcell-gateway"
SUPERVISOR_HOME = "/medcell"
MANAGE = ["python", "-m", "services.facility"]
# Every container of the facility's image (its server and each command) gets the facility's own
# system-call allowlist (host/seccomp.py).
FACILITY_SECCOMP = facility_profile()


def facility_spec(
    config: Config,
    facility: Facility,
    name: str,
    retention: str,
    image_id: str | None = None,
    mail: bool = False,
) -> ContainerSpec:
    """The long-running container of one facility: no network at all, only its socket directory.

    `mail`: the installation relays mail, so the facility queues notifications (it learns only
    that, never the SMTP server or its secret).
    """
    slug = facility.slug
    # The image it was made from, so that `medcell up` can tell which facilities to upgrade.
    labels = {**config.labels(facility=slug, role="facility"), str(Label.IMAGE): image_id or ""}
    spec = ContainerSpec(
        name=facility.container,
        image=config.facility_image,
        user=FACILITY_USER,
        labels=labels,
        environment={
            "MEDCELL_FACILITY": slug,
            "MEDCELL_FACILITY_NAME": name,
            "MEDCELL_RETENTION": retention,
            # Set here, not only in the image: without a network the socket is the only way in.
            "MEDCELL_BIND": FACILITY_BIND,
            # Its own origin: every absolute link it builds starts here, never with a client's
            # Host. Part of the fingerprint, so `medcell up` recreates it when the domain or port
            # changes.
            "MEDCELL_PUBLIC_URL": facility.url,
            # Deletions drop their tombstones on the host, outside the volumes a restore
            # replaces (host/tombstones.py collects them).
            "MEDCELL_TOMBSTONE_DIR": f"{FACILITY_RUN_DIR}/{TOMBSTONE_DROP_DIR}",
            # Its opening hours are local time: the automatic reply outside them needs the zone.
            "MEDCELL_TIMEZONE": config.timezone,
        },
        network=None,
        volumes={facility.data_volume: "/data", facility.keys_volume: "/keys"},
        rw_binds={str(facility.socket_dir): FACILITY_RUN_DIR},
        # Health is probed from outside over the socket; an image's own check would fork a
        # process every few seconds in every facility.
        healthcheck=False,
        seccomp=FACILITY_SECCOMP,
    )
    if mail:
        spec.environment["MEDCELL_MAIL"] = "on"
    return _fingerprinted(spec, image_id)


def shred_spec(config: Config, slug: str) -> ContainerSpec:
    """A one-off container that destroys a stopped facility's keys; it has no network at all."""
    names = config.facility(slug)
    return ContainerSpec(
        name=f"{names.container}-shred",
        image=config.facility_image,
        user=FACILITY_USER,
        labels=config.labels(facility=slug, role="shred"),
        environment={"MEDCELL_FACILITY": slug},
        network=None,
        volumes={names.data_volume: "/data", names.keys_volume: "/keys"},
        command=[*MANAGE, "shred-keys"],
        restart=None,
        seccomp=FACILITY_SECCOMP,
    )


def offline_spec(config: Config, slug: str, *command: str) -> ContainerSpec:
    """The same one-off container, running another management command on the volumes.

    It keeps the `-shred` name (slugs cannot end in it), so it never takes a facility's name.
    """
    return dataclasses.replace(shred_spec(config, slug), command=[*MANAGE, *command])


BACKUP_MOUNT = "/backup"


def backup_spec(
    config: Config, slug: str, labels: dict[str, str], staging: str, backup_id: str
) -> ContainerSpec:
    """A one-off container that writes a sealed backup of the facility into `staging`."""
    command = ["backup", "--id", backup_id, "--out", BACKUP_MOUNT]
    # Named per backup: two backups may run at once, and `_` never occurs in a slug, so no
    # facility's container can ever have this name.
    name = f"{config.facility(slug).container}_backup_{backup_id}"
    return _offline(
        config, slug, labels, name, "backup", command, {"rw_binds": {staging: BACKUP_MOUNT}}
    )


def restore_spec(config: Config, slug: str, labels: dict[str, str], staging: str) -> ContainerSpec:
    """A one-off container that restores the sealed backup in `staging` (read-only) and sweeps."""
    command = ["restore", "--from", BACKUP_MOUNT]
    name = f"{config.facility(slug).container}_restore"
    return _offline(
        config, slug, labels, name, "restore", command, {"binds": {staging: BACKUP_MOUNT}}
    )


def _offline(
    config: Config,
    slug: str,
    labels: dict[str, str],
    name: str,
    role: str,
    command: list[str],
    mounts: dict,
) -> ContainerSpec:
    """The facility's own image over its volumes, without a network; its secret comes on stdin.

    `labels` are the data volume's, so it sees the facility's name and initial retention as the
    app does.
    """
    names = config.facility(slug)
    return ContainerSpec(
        name=name,
        image=config.facility_image,
        user=FACILITY_USER,
        labels=config.labels(facility=slug, role=role),
        environment={
            "MEDCELL_FACILITY": slug,
            "MEDCELL_FACILITY_NAME": labels.get(Label.NAME, slug),
            "MEDCELL_RETENTION": labels.get(Label.RETENTION, "7d"),
            # SQLite's temporary files while copying a database as large as the facility's
            # would overflow the container's 64 MiB /tmp ("database or disk is full").
            "SQLITE_TMPDIR": "/data",
        },
        network=None,
        volumes={names.data_volume: "/data", names.keys_volume: "/keys"},
        command=[*MANAGE, *command],
        restart=None,
        healthcheck=False,
        stdin_open=True,
        seccomp=FACILITY_SECCOMP,
        **mounts,
    )


def gateway_spec(config: Config, user: str, image_id: str | None) -> ContainerSpec:
    """The gateway: the only published ports; facility sockets and its config read-only."""
    # The public port lets the gateway's HTTP redirect point at the right HTTPS port.
    # The domain: it serves https://<slug>.<domain>/ and answers any other host name with 421.
    environment = {
        "MEDCELL_GATEWAY_CONFIG": GATEWAY_CONFIG_DIR,
        "MEDCELL_GATEWAY_PORT": str(config.gateway_port),
        "MEDCELL_DOMAIN": config.public_domain,
        "MEDCELL_WAKE_BUDGET": str(config.wake_budget),
        "MEDCELL_WAKE_BUDGET_WINDOW": f"{config.wake_budget_window}s",
    }
    if config.trusted_proxies:
        environment["MEDCELL_GATEWAY_TRUSTED_PROXIES"] = ",".join(config.trusted_proxies)
    spec = ContainerSpec(
        name=config.gateway_container,
        image=config.gateway_image,
        user=user,
        labels=config.labels(role="gateway"),
        environment=environment,
        network=config.edge_network,
        binds={
            str(config.gateway_dir): GATEWAY_CONFIG_DIR,
            str(config.run_dir / "facilities"): "/run/medcell/facilities",
            str(config.supervisor_run_dir): "/run/medcell/supervisor",
        },
        # Only its acknowledgement of the applied routes generation is written back.
        rw_binds={str(config.gateway_run_dir): "/run/medcell/gateway"},
        ports={
            GATEWAY_HTTPS_PORT: config.gateway_port,
            GATEWAY_HTTP_PORT: config.gateway_http_port,
        },
        bind_address=config.gateway_bind,
        limits=Limits(memory="256m", cpus=config.gateway_cpus, pids=256),
    )
    return _fingerprinted(spec, image_id)


def gateway_cluster_environment() -> dict[str, str]:
    """What a cluster node's gateway adds to its environment: the node's TLS files, so that it
    forwards remote facilities to their nodes and takes the other nodes' requests for its own on
    its peer listener (container port GATEWAY_PEER_PORT, to be reachable from the other nodes)."""
    return {"MEDCELL_GATEWAY_CLUSTER_TLS": GATEWAY_CLUSTER_TLS_DIR}


def supervisor_spec(
    config: Config,
    user: str,
    socket_gid: int | None,
    docker_socket: str,
    image_id: str | None,
    network: str | None = None,
    publish_metrics: bool = False,
) -> ContainerSpec:
    """The supervisor: the Docker socket and MEDCELL_HOME, nothing else; a network of its own
    (`network`) when it relays mail to an SMTP server or publishes its metrics.

    `publish_metrics` (one host): it listens for GET /metrics on every address inside its
    container, published on the host only at MEDCELL_METRICS_BIND; the network is then its own
    (the mail network, or the metrics network without a route out).
    """
    spec = ContainerSpec(
        name=config.supervisor_container,
        image=config.supervisor_image,
        user=user,
        labels=config.labels(role="supervisor"),
        environment={
            "MEDCELL_HOME": SUPERVISOR_HOME,
            # Where that is on the host: a one-off container's bind mount names the host's path.
            "MEDCELL_HOST_HOME": str(config.home),
            "MEDCELL_DOCKER_PREFIX": config.prefix,
            "MEDCELL_IDLE_TIMEOUT": idle_text(config.idle_timeout),
            "MEDCELL_IMAGE_TAG": config.image_tag,
            "MEDCELL_HEALTH_TIMEOUT": f"{config.health_timeout:g}",
            # The facilities' origins (Config.facility_url), as the CLI computes them.
            "MEDCELL_DOMAIN": config.public_domain,
            "MEDCELL_GATEWAY_PORT": str(config.gateway_port),
            # Derived from the host's memory where `medcell up` runs, unless the operator set it.
            "MEDCELL_MAX_AWAKE": str(config.max_awake),
            # Set only when the operator set it: otherwise the supervisor counts its own CPUs.
            **(
                {"MEDCELL_WAKES_AT_ONCE": str(config.wakes_at_once)} if config.wakes_at_once else {}
            ),
            "MEDCELL_TIMEZONE": config.timezone,
            # Cluster mode's scheduled backups (set only when the operator set it).
            **({"MEDCELL_BACKUP_EVERY": f"{config.backup_every}s"} if config.backup_every else {}),
        },
        network=network,
        rw_binds={docker_socket: "/var/run/docker.sock", str(config.home): SUPERVISOR_HOME},
        group_add=() if socket_gid is None else (str(socket_gid),),
        limits=Limits(memory="128m", cpus=1.0, pids=256),
    )
    if publish_metrics:
        host, port = config.metrics_bind
        # Inside, every address: only Docker's publish reaches it, and only on `host`.
        spec.environment["MEDCELL_METRICS_BIND"] = f"0.0.0.0:{port}"
        spec = dataclasses.replace(spec, ports={port: port}, bind_address=host)
    return _fingerprinted(spec, image_id)


def _fingerprinted(spec: ContainerSpec, image_id: str | None) -> ContainerSpec:
    # `medcell up` recreates a container whose fingerprint (settings or image) changed.
    # The seccomp profile is left out of the spec's repr (it is long): its digest is taken here.
    profile = hashlib.sha256(spec.seccomp.encode()).hexdigest() if spec.seccomp else ""
    parts = [repr(spec), image_id, *([profile] if profile else [])]
    fingerprint = json.dumps(parts, sort_keys=True).encode()
    spec.labels[str(Label.CONFIG)] = hashlib.sha256(fingerprint).hexdigest()[:16]
    return spec

"""What medcell's containers look like: images, users, mounts, limits, labels, environment."""

from __future__ import annotations

import hashlib
import json

from provisioner.config import Config
from provisioner.docker_backend import ContainerSpec, Limits

FACILITY_USER = "10001:10001"
FACILITY_PORT = 8000
GATEWAY_HTTPS_PORT = 8443
GATEWAY_HTTP_PORT = 8080
GATEWAY_CONFIG_DIR = "/etc/medcell-gateway"
MANAGE = ["python", "-m", "services.facility"]


def facility_spec(
    config: Config, slug: str, name: str, retention: str, image_id: str | None = None
) -> ContainerSpec:
    """The long-running container of one facility: only its own network, no ports, no secrets."""
    names = config.facility(slug)
    # The image it was made from, so that `medcell up` can tell which facilities to upgrade.
    labels = {**config.labels(facility=slug, role="facility"), "medcell.image": image_id or ""}
    return ContainerSpec(
        name=names.container,
        image=config.facility_image,
        user=FACILITY_USER,
        labels=labels,
        environment={
            "MEDCELL_FACILITY": slug,
            "MEDCELL_FACILITY_NAME": name,
            "MEDCELL_RETENTION": retention,
        },
        network=names.network,
        volumes={names.data_volume: "/data", names.keys_volume: "/keys"},
    )


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
        limits=Limits(restart_retries=0),
    )


def gateway_spec(config: Config, user: str, image_id: str | None) -> ContainerSpec:
    """The gateway: the only published ports, its config directory mounted read-only."""
    # The public port lets the gateway's HTTP redirect point at the right HTTPS port.
    environment = {
        "MEDCELL_GATEWAY_CONFIG": GATEWAY_CONFIG_DIR,
        "MEDCELL_GATEWAY_PORT": str(config.gateway_port),
    }
    if config.domain:
        environment["MEDCELL_DOMAIN"] = config.domain
    spec = ContainerSpec(
        name=config.gateway_container,
        image=config.gateway_image,
        user=user,
        labels=config.labels(role="gateway"),
        environment=environment,
        network=config.edge_network,
        binds={str(config.gateway_dir): GATEWAY_CONFIG_DIR},
        ports={
            GATEWAY_HTTPS_PORT: config.gateway_port,
            GATEWAY_HTTP_PORT: config.gateway_http_port,
        },
        bind_address=config.gateway_bind,
        limits=Limits(memory="256m", cpus=config.gateway_cpus, pids=256),
    )
    # `medcell up` recreates the gateway when this fingerprint (settings or image) changes.
    fingerprint = json.dumps([repr(spec), image_id], sort_keys=True).encode()
    spec.labels["medcell.config"] = hashlib.sha256(fingerprint).hexdigest()[:16]
    return spec

"""`medcell up` / `down`: images, the gateway container, and repair of what an operator removed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from provisioner import specs, state
from provisioner.errors import Conflict, DockerError, ImageBuildFailed
from provisioner.facilities import Facilities, container_status
from provisioner.tls import ensure_certificate

GATEWAY_UID = 10001


def repo_root() -> Path:
    """The source tree this package runs from (deploy/ lives beside provisioner/)."""
    return Path(__file__).resolve().parents[1]


def gateway_identity() -> tuple[str, tuple[int, int] | None]:
    """The gateway's user, and who must own its key: uid 10001 as root, else the operator."""
    if os.geteuid() == 0:
        return f"{GATEWAY_UID}:{GATEWAY_UID}", (GATEWAY_UID, GATEWAY_UID)
    # Without root we cannot chown the key to 10001, so the gateway runs as its owner.
    return f"{os.getuid()}:{os.getgid()}", None


def build_images(progress: Callable[[str], None]) -> None:
    """Run deploy/build-images.sh, which builds only what is missing or changed."""
    script = repo_root() / "deploy" / "build-images.sh"
    if not script.exists():
        raise ImageBuildFailed(
            f"medcell images are missing and {script} is not there to build them"
        )
    progress("building medcell images (this takes a few minutes the first time) ...")
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script)], cwd=repo_root(), env=env, stdout=sys.stderr)
    if result.returncode != 0:
        raise ImageBuildFailed(f"building the images failed (exit code {result.returncode})")


class Stack:
    """The gateway side of an installation: images, edge network, gateway container, routes."""

    def __init__(
        self,
        facilities: Facilities,
        build: Callable[[Callable[[str], None]], None] = build_images,
        identity: Callable[[], tuple[str, tuple[int, int] | None]] = gateway_identity,
    ):
        self.facilities = facilities
        self.config = facilities.config
        self.backend = facilities.backend
        self.progress = facilities.progress
        self.build = build
        self.identity = identity

    def up(self) -> dict:
        """Build missing images, repair facilities' networks, start the gateway, publish routes."""
        state.ensure_home(self.config)
        images = (self.config.facility_image, self.config.gateway_image)
        if any(self.backend.image_id(image) is None for image in images):
            self.build(self.progress)
            missing = [image for image in images if self.backend.image_id(image) is None]
            if missing:
                raise ImageBuildFailed(
                    f"images still missing after the build: {', '.join(missing)}"
                )
        user, owner = self.identity()
        ensure_certificate(self.config, owner)
        repaired = self._ensure_edge_network()
        for found in self.facilities.discover().values():
            repaired += self.facilities.repair_facility(found)
        repaired += self._ensure_gateway(user)
        self.facilities.publish()
        return {
            "url": self.config.base_url,
            "gateway": self.config.gateway_container,
            "status": self.status(),
            "repaired": repaired,
        }

    def down(self) -> dict:
        """Stop and remove the gateway; facilities and their data are untouched."""
        existed = self.backend.container(self.config.gateway_container) is not None
        self.backend.remove_container(self.config.gateway_container)
        self.backend.remove_network(self.config.edge_network)
        return {"gateway": self.config.gateway_container, "removed": existed}

    def status(self) -> str:
        """The gateway's status: running, stopped or unhealthy."""
        return container_status(self.backend.container(self.config.gateway_container))

    def _ensure_edge_network(self) -> list[str]:
        """The gateway's own network, the only one with a route out (for published ports)."""
        if self.backend.network(self.config.edge_network) is not None:
            return []
        try:
            self.backend.create_pooled_network(
                self.config.edge_network,
                self.config.subnet_pool,
                self.config.labels(role="gateway"),
                internal=False,
            )
        except Conflict:
            return []  # a concurrent `medcell up` made it
        return [f"created network {self.config.edge_network}"]

    def _ensure_gateway(self, user: str) -> list[str]:
        name = self.config.gateway_container
        spec = specs.gateway_spec(
            self.config, user, self.backend.image_id(self.config.gateway_image)
        )
        info = self.backend.container(name)
        done = []
        if info and info.labels.get("medcell.config") != spec.labels["medcell.config"]:
            self.backend.remove_container(name)
            info = None
            done.append(f"recreated {name} for new settings or image")
        if info is None:
            self.backend.create_container(spec)
            if not done:
                done.append(f"created {name}")
        for network in self._facility_networks():
            self.backend.connect(network, name)
        if info is None or info.status != "running":
            try:
                self.backend.start(name)
            except DockerError as e:
                # A half-started gateway (e.g. port taken) would block the next `up`.
                self.backend.remove_container(name)
                if "already in use" in str(e) or "already allocated" in str(e):
                    raise DockerError(
                        f"ports {self.config.gateway_port}/{self.config.gateway_http_port} are "
                        "taken; set MEDCELL_GATEWAY_PORT and MEDCELL_GATEWAY_HTTP_PORT"
                    ) from e
                raise
        self.facilities.wait_healthy(name)
        return done

    def _facility_networks(self) -> list[str]:
        labels = {"medcell.instance": self.config.prefix, "medcell.role": "network"}
        return [n.name for n in self.backend.networks(labels)]

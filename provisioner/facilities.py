"""Facility operations: create, list, show, stop, start, delete, rotate-key (a Python API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from provisioner import facility_app, routes, specs, state
from provisioner.config import Config, FacilityNames
from provisioner.docker_backend import ContainerInfo, DockerBackend, VolumeInfo
from provisioner.errors import (
    Conflict,
    DockerError,
    FacilityCommandFailed,
    FacilityExists,
    FacilityNotFound,
    ProvisionerError,
)
from provisioner.validation import check_name, check_retention, check_slug

DEFAULT_RETENTION = "7d"


@dataclass
class Found:
    """What Docker holds of one facility right now."""

    slug: str
    container: ContainerInfo | None = None
    data: VolumeInfo | None = None

    @property
    def status(self) -> str:
        return container_status(self.container)


def container_status(info: ContainerInfo | None) -> str:
    """The contract's status from Docker's own state: running, stopped or unhealthy."""
    if info is None:
        return "stopped"
    if info.status == "restarting" or (info.status == "running" and info.health == "unhealthy"):
        return "unhealthy"
    return "running" if info.status == "running" else "stopped"


class Facilities:
    """The provisioner's operations on facilities, over one Docker backend."""

    def __init__(
        self,
        config: Config,
        backend: DockerBackend,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.backend = backend
        self.progress = progress or (lambda message: None)
        self.sleep = sleep
        self.clock = clock

    # reading

    def discover(self) -> dict[str, Found]:
        """Every facility of this installation, from the labels on its container and data volume."""
        labels = {"medcell.instance": self.config.prefix, "medcell.facility": None}
        found: dict[str, Found] = {}
        for info in self.backend.containers({**labels, "medcell.role": "facility"}):
            slug = info.labels["medcell.facility"]
            found.setdefault(slug, Found(slug)).container = info
        for volume in self.backend.volumes({**labels, "medcell.role": "data"}):
            slug = volume.labels["medcell.facility"]
            found.setdefault(slug, Found(slug)).data = volume
        return dict(sorted(found.items()))

    def list(self) -> list[dict]:
        """Slug, name and status of every facility."""
        return [
            {"slug": f.slug, "name": _meta(f, "name", f.slug), "status": f.status}
            for f in self.discover().values()
        ]

    def show(self, slug: str) -> dict:
        """Details of one facility."""
        found = self._find(check_slug(slug))
        names = self.config.facility(slug)
        network = self.backend.network(names.network)
        return {
            "slug": slug,
            "name": _meta(found, "name", slug),
            "status": found.status,
            "retention": _meta(found, "retention", DEFAULT_RETENTION),
            "created": _meta(found, "created", None),
            "url": self.config.facility_url(slug),
            "container": names.container,
            "container_state": found.container.status if found.container else "missing",
            "health": found.container.health if found.container else None,
            "volume": names.data_volume,
            "keys_volume": names.keys_volume,
            "network": names.network,
            "subnet": network.subnets[0] if network and network.subnets else None,
        }

    # changing

    def create(
        self,
        slug: str,
        name: str | None = None,
        retention: str = DEFAULT_RETENTION,
        admin: str = "admin",
    ) -> dict:
        """Provision a facility, wait until it is healthy, and make its first admin."""
        check_slug(slug)
        check_retention(retention)
        name = check_name(name or slug)
        names = self.config.facility(slug)
        undo: list[Callable[[], None]] = []
        with state.facility_lock(self.config, slug):
            try:
                self._refuse_existing(names)
                self._require_image()
                self._create_network(names)
                undo.append(lambda: self.backend.remove_network(names.network))
                meta = {"name": name, "retention": retention, "created": state.now_iso()}
                self._create_volumes(names, meta)
                undo.append(lambda: self.backend.remove_volume(names.keys_volume))
                undo.append(lambda: self.backend.remove_volume(names.data_volume))
                self.backend.create_container(
                    specs.facility_spec(
                        self.config,
                        slug,
                        name,
                        retention,
                        self.backend.image_id(self.config.facility_image),
                    )
                )
                undo.append(lambda: self.backend.remove_container(names.container))
                self._attach_gateway(names.network)
                undo.append(lambda: self._detach_gateway(names.network))
                self.backend.start(names.container)
                self.wait_healthy(names.container)
                admin_login = self._create_admin(names.container, admin)
            except BaseException:
                _undo_all([self.publish, *undo])  # publish runs last
                raise
            self.publish()
        return {
            "slug": slug,
            "url": self.config.facility_url(slug),
            "admin_user": admin_login["username"],
            "admin_password": admin_login["password"],
        }

    def stop(self, slug: str) -> dict:
        """Stop the facility's container; its data stays."""
        with state.facility_lock(self.config, check_slug(slug)):
            found = self._find(slug)
            if found.container and found.container.status in ("running", "restarting", "paused"):
                self.backend.stop(found.container.name)
            self.publish()
        return {"slug": slug, "status": self._find(slug).status}

    def start(self, slug: str) -> dict:
        """Start the facility, recreating its network and container from its volumes if missing."""
        with state.facility_lock(self.config, check_slug(slug)):
            found = self._find(slug)
            names = self.config.facility(slug)
            self.repair_facility(found)
            info = self.backend.container(names.container)
            if info is None:
                self._create_volumes(names, {})
                self.backend.create_container(self._spec(found))
                self.progress(f"recreated container {names.container} from its volumes")
            if info is None or info.status != "running":
                self.backend.start(names.container)
            self.wait_healthy(names.container)
            self.publish()
        return {"slug": slug, "status": self._find(slug).status}

    def delete(self, slug: str) -> dict:
        """Destroy the facility's keys, then its container, volumes and network."""
        with state.facility_lock(self.config, check_slug(slug)):
            names = self.config.facility(slug)
            labels = {"medcell.instance": self.config.prefix, "medcell.facility": slug}
            containers = self.backend.containers(labels)
            volumes = self.backend.volumes(labels)
            networks = self.backend.networks(labels)
            if not (containers or volumes or networks):
                raise FacilityNotFound(f"no facility {slug}")
            destroyed = self._shred(names, volumes)
            for info in containers:
                self.backend.remove_container(info.name)
            for volume in volumes:
                self.backend.remove_volume(volume.name)
            for network in networks:
                self._detach_gateway(network.name)
                self.backend.remove_network(network.name)
            state.log_deletion(self.config, slug)
            self.publish()
        return {"slug": slug, "deleted": True, "keys_destroyed": destroyed}

    def rotate_key(self, slug: str) -> dict:
        """Make a new key version in the running facility; old data stays readable."""
        with state.facility_lock(self.config, check_slug(slug)):
            found = self._find(slug)
            if found.status != "running":
                raise FacilityCommandFailed(f"facility {slug} is {found.status}; start it first")
            result = self._manage(self.config.facility(slug).container, "rotate-key")
        return {"slug": slug, **result}

    def publish(self) -> int:
        """Rewrite routes.json from Docker's truth."""
        states = {
            slug: "running" if f.status == "running" else "stopped"
            for slug, f in self.discover().items()
        }
        return routes.publish(self.config, states)

    def repair_facility(self, found: Found) -> list[str]:
        """Recreate a missing network and reattach the container and gateway; say what was done."""
        names = self.config.facility(found.slug)
        done = []
        if self.backend.network(names.network) is None:
            self._create_network(names)
            done.append(f"recreated network {names.network}")
            if found.container:
                # The container still points at the old network's ID; only a new one can start.
                was_running = found.container.status == "running"
                self.backend.remove_container(names.container)
                self.backend.create_container(self._spec(found))
                if was_running:
                    self.backend.start(names.container)
                done.append(f"recreated container {names.container}")
        elif found.container and names.network not in found.container.networks:
            self.backend.connect(names.network, names.container)
            done.append(f"reconnected {names.container} to {names.network}")
        self._attach_gateway(names.network)
        done += self._upgrade(found)
        return done

    def _upgrade(self, found: Found) -> list[str]:
        """Recreate a container made from an older facility image; its volumes carry the data."""
        names = self.config.facility(found.slug)
        info = self.backend.container(names.container)
        current = self.backend.image_id(self.config.facility_image)
        if info is None or current is None or info.labels.get("medcell.image") == current:
            return []
        was_running = info.status == "running"
        self.progress(f"upgrading {names.container} to the current facility image")
        self.backend.remove_container(names.container)
        self.backend.create_container(self._spec(found))
        if was_running:
            self.backend.start(names.container)
            self.wait_healthy(names.container)
        return [f"upgraded {names.container} to the current facility image"]

    # helpers

    def _find(self, slug: str) -> Found:
        names = self.config.facility(slug)
        found = Found(
            slug, self.backend.container(names.container), self.backend.volume(names.data_volume)
        )
        if found.container is None and found.data is None:
            raise FacilityNotFound(f"no facility {slug}")
        return found

    def _spec(self, found: Found):
        name = _meta(found, "name", found.slug)
        retention = _meta(found, "retention", DEFAULT_RETENTION)
        image_id = self.backend.image_id(self.config.facility_image)
        return specs.facility_spec(self.config, found.slug, name, retention, image_id)

    def _refuse_existing(self, names: FacilityNames) -> None:
        if (
            self.backend.container(names.container)
            or self.backend.volume(names.data_volume)
            or self.backend.volume(names.keys_volume)
            or self.backend.network(names.network)
        ):
            raise FacilityExists(f"facility {names.slug} already exists")

    def _require_image(self) -> None:
        if self.backend.image_id(self.config.facility_image) is None:
            raise DockerError(f"image {self.config.facility_image} is missing; run `medcell up`")

    def _create_network(self, names: FacilityNames) -> str:
        """Create the facility's internal network on a free /28 of the pool."""
        labels = self.config.labels(facility=names.slug, role="network")
        try:
            return self.backend.create_pooled_network(
                names.network, self.config.subnet_pool, labels, internal=True
            )
        except Conflict as e:
            raise FacilityExists(f"facility {names.slug} already exists") from e

    def _create_volumes(self, names: FacilityNames, meta: dict[str, str]) -> None:
        if self.backend.volume(names.data_volume) is None:
            self.backend.create_volume(
                names.data_volume, self.config.labels(facility=names.slug, role="data", **meta)
            )
        if self.backend.volume(names.keys_volume) is None:
            self.backend.create_volume(
                names.keys_volume, self.config.labels(facility=names.slug, role="keys")
            )

    def _attach_gateway(self, network: str) -> None:
        if self.backend.container(self.config.gateway_container) is not None:
            self.backend.connect(network, self.config.gateway_container)

    def _detach_gateway(self, network: str) -> None:
        self.backend.disconnect(network, self.config.gateway_container)

    def wait_healthy(self, container: str) -> None:
        """Wait until the container passes its health check; fail early if it gave up."""
        facility_app.wait_healthy(
            self.backend,
            container,
            self.config.health_timeout,
            progress=self.progress,
            sleep=self.sleep,
            clock=self.clock,
        )

    def _manage(self, container: str, *command: str) -> dict:
        return facility_app.manage(self.backend, container, *command)

    def _create_admin(self, container: str, username: str) -> dict:
        """Make the first admin; once more if a container restart killed the first attempt."""
        try:
            return self._manage(container, "create-admin", "--username", username)
        except FacilityCommandFailed as e:
            if e.exit_code != facility_app.KILLED:
                raise
        self.progress(f"{container} restarted while being set up; trying again")
        self.wait_healthy(container)
        return self._manage(container, "create-admin", "--username", username)

    def _shred(self, names: FacilityNames, volumes: list[VolumeInfo]) -> int:
        """Destroy the keys first (crypto-shredding); refuse to go on if that fails."""
        if not any(v.name == names.keys_volume for v in volumes):
            return 0
        info = self.backend.container(names.container)
        if info and info.status == "running":
            try:
                return int(self._manage(names.container, "shred-keys").get("destroyed", 0))
            except ProvisionerError as e:
                self.progress(f"shredding inside {names.container} failed ({e}); trying offline")
            self.backend.stop(names.container)
        if self.backend.image_id(self.config.facility_image) is None:
            raise DockerError(f"image {self.config.facility_image} is needed to destroy the keys")
        return facility_app.shred_offline(self.backend, specs.shred_spec(self.config, names.slug))


def _meta(found: Found, key: str, default):
    labels = found.data.labels if found.data else {}
    return labels.get(f"medcell.{key}", default)


def _undo_all(steps: list[Callable[[], None]]) -> None:
    for step in reversed(steps):
        try:
            step()
        except ProvisionerError:
            pass  # keep the original error; what is left shows up in `facility list`

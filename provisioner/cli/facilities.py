"""Facility operations: create, list, show, stop, start, sleep, wake, delete, rotate-key."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medcell_common.interfaces import Desired, Health, Label, RouteState, Status
from medcell_common.times import iso_utc
from provisioner.cli.cluster_facilities import ClusterFacilities, Placed
from provisioner.host import (
    backup_keys,
    facility_commands,
    home,
    lifecycle,
    locks,
    routes,
    smtp,
    specs,
    state_file,
    tombstones,
)
from provisioner.host.config import Config, Facility, idle_text, parse_idle
from provisioner.host.docker_backend import ContainerInfo, DockerBackend, VolumeInfo
from provisioner.host.errors import (
    DockerError,
    FacilityCommandFailed,
    FacilityExists,
    FacilityNotFound,
    InvalidArgument,
    ProvisionerError,
)
from provisioner.host.state_file import FacilityState
from provisioner.host.validation import check_name, check_quota, check_retention, check_slug

DEFAULT_RETENTION = "7d"


@dataclass
class Found:
    """What Docker and the state file hold of one facility right now."""

    slug: str
    container: ContainerInfo | None = None
    data: VolumeInfo | None = None
    state: FacilityState = field(default_factory=FacilityState)
    node: str | None = None  # cluster mode: the node its service is pinned to

    @property
    def status(self) -> str:
        return facility_status(self.container, self.state)

    @property
    def running(self) -> bool:
        return self.container is not None and self.container.status == "running"


def facility_status(container: ContainerInfo | None, st: FacilityState) -> str:
    """The contract's status: running, asleep, stopped or unhealthy."""
    if container is None:
        return Status.STOPPED
    if container.status == "running":
        # Running while st.asleep: it is being put to sleep and still answers.
        if not st.asleep and st.health == Health.UNHEALTHY:
            return Status.UNHEALTHY
        return Status.RUNNING
    if st.desired == Desired.STOPPED:
        return Status.STOPPED
    if st.asleep:
        return Status.UNHEALTHY if st.health == Health.UNHEALTHY else Status.ASLEEP
    return Status.UNHEALTHY  # it should run but does not (crashed, restarting, removed network, …)


def container_status(info: ContainerInfo | None) -> str:
    """Status of one of medcell's own containers (gateway, supervisor) from Docker's state."""
    if info is None:
        return Status.STOPPED
    if info.status == "restarting" or (info.status == "running" and info.health == "unhealthy"):
        return Status.UNHEALTHY
    return Status.RUNNING if info.status == "running" else Status.STOPPED


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
        # How long a command waits for another one on the same facility to end.
        self.lock_wait = locks.COMMAND_WAIT
        self.cluster = ClusterFacilities(config, backend, lambda message: self.progress(message))

    # reading

    def discover(self) -> dict[str, Found]:
        """Every facility: one container list, one volume list, and the state files."""
        labels = {Label.INSTANCE: self.config.prefix, Label.FACILITY: None}
        found: dict[str, Found] = {}
        for info in self.backend.containers({**labels, Label.ROLE: "facility"}):
            slug = info.labels[Label.FACILITY]
            found.setdefault(slug, Found(slug)).container = info
        for volume in self.backend.volumes({**labels, Label.ROLE: "data"}):
            slug = volume.labels[Label.FACILITY]
            found.setdefault(slug, Found(slug)).data = volume
        for slug, st in state_file.load_all(self.config).items():
            if slug in found:  # a state file alone (no Docker object) is no facility
                found[slug].state = st
        return dict(sorted(found.items()))

    def everywhere(self) -> dict[str, Found]:
        """Every facility of the installation: this host's, or in cluster mode every node's
        (from the Swarm's services: the state files live on each facility's own node)."""
        if not self.cluster.active():
            return self.discover()
        return {slug: _cluster_found(self.config, p) for slug, p in self.cluster.placed().items()}

    def list(self) -> list[dict]:
        """Slug, name and status of every facility (in cluster mode also its node)."""
        cluster = self.cluster.active()
        return [
            {
                "slug": f.slug,
                "name": _meta(f, "name", f.slug),
                "status": f.status,
                **({"node": f.node} if cluster else {}),
            }
            for f in self.everywhere().values()
        ]

    def show(self, slug: str) -> dict:
        """Details of one facility."""
        if self.cluster.active():
            return self._show_placed(check_slug(slug))
        found = self.find(check_slug(slug))
        names = self.config.facility(slug)
        st = found.state
        return {
            "slug": slug,
            "name": _meta(found, "name", slug),
            "status": found.status,
            "desired": st.desired,
            "retention": _meta(found, "retention", DEFAULT_RETENTION),
            "idle": idle_text(st.idle_timeout(self.config)),
            "wake_at": iso_utc(st.wake_at) if st.asleep and st.wake_at is not None else None,
            "created": _meta(found, "created", None),
            "url": self.config.facility_url(slug),
            "container": names.container,
            "container_state": found.container.status if found.container else "missing",
            "health": st.health,
            "error": st.error,
            "volume": names.data_volume,
            "keys_volume": names.keys_volume,
            **self.usage(found),
        }

    def _show_placed(self, slug: str) -> dict:
        """Details of a facility in cluster mode: its service, its node, its usage there."""
        node, placed = self.cluster.node_of(slug)
        found = _cluster_found(self.config, placed)
        names = self.config.facility(slug)
        usage = _usage_fields(None)
        if found.status == Status.RUNNING:
            try:
                usage = _usage_fields(self.cluster.client(node).manage(slug, "usage"))
            except ProvisionerError as e:
                self.progress(f"could not read the usage of {slug}: {e}")
        return {
            "slug": slug,
            "name": _meta(found, "name", slug),
            "status": found.status,
            "node": node.name,
            "retention": _meta(found, "retention", DEFAULT_RETENTION),
            "created": _meta(found, "created", None),
            "url": names.url,
            "container": names.container,
            "container_state": placed.task.state if placed.task else "asleep",
            "error": placed.task.error or None if placed.task else None,
            "volume": names.data_volume,
            "keys_volume": names.keys_volume,
            **usage,
        }

    def find(self, slug: str) -> Found:
        """The facility's container, data volume and state; FacilityNotFound if it has none."""
        names = self.config.facility(slug)
        found = Found(
            slug,
            self.backend.container(names.container),
            self.backend.volume(names.data_volume),
            state_file.load(self.config, slug),
        )
        if found.container is None and found.data is None:
            raise FacilityNotFound(f"no facility {slug}")
        return found

    # changing

    def create(
        self,
        slug: str,
        name: str | None = None,
        retention: str = DEFAULT_RETENTION,
        admin: str = "admin",
        idle: str | None = None,
        quota: str | None = None,
        conversation_quota: str | None = None,
        node: str | None = None,
    ) -> dict:
        """Provision a facility, wait until it answers on its socket, and make its first admin.

        In cluster mode on a node (`node`, else the one with the most room) as a pinned service.
        """
        check_slug(slug)
        check_retention(retention)
        quota_args = _quota_args(quota, conversation_quota)
        name = check_name(name or slug)
        idle_seconds = None if idle is None else parse_idle(idle)
        if self.cluster.active():
            with self.cluster_lock(slug):
                return self.cluster.create(
                    slug, name, retention, admin, idle_seconds, quota_args, node
                )
        if node is not None:
            raise InvalidArgument(f"--node {node}: this host is not in a cluster")
        facility = self.config.facility(slug)
        undo: list[Callable[[], None]] = []
        with self.lock(slug):
            try:
                self._refuse_existing(facility)
                self._require_image()
                meta = {"name": name, "retention": retention, "created": iso_utc()}
                if idle_seconds is not None:
                    meta["idle"] = idle_text(idle_seconds)
                self._create_volumes(facility, meta)
                undo.append(lambda: self.backend.remove_volume(facility.keys_volume))
                undo.append(lambda: self.backend.remove_volume(facility.data_volume))
                undo.append(lambda: self._forget(facility))
                state_file.save(self.config, slug, FacilityState(idle=idle_seconds))
                home.ensure_socket_dir(facility)
                image_id = self.backend.image_id(self.config.facility_image)
                self.backend.create_container(
                    specs.facility_spec(
                        self.config,
                        facility,
                        name,
                        retention,
                        image_id,
                        smtp.configured(self.config.home),
                    )
                )
                undo.append(lambda: self.backend.remove_container(facility.container))
                self.backend.start(facility.container)
                self.wait_healthy(slug)
                admin_login = self._create_admin(facility, admin)
                if quota_args:
                    self._manage(facility.container, "set-quota", *quota_args)
                self.route(slug, RouteState.RUNNING)
            except BaseException:
                _undo_all(undo)
                raise
        return {
            "slug": slug,
            "url": facility.url,
            "admin_user": admin_login["username"],
            "admin_password": admin_login["password"],
        }

    def stop(self, slug: str) -> dict:
        """The operator's stop: nothing wakes it (not requests, not deadlines) until `start`."""
        if self.cluster.active():
            return self._change_placed(check_slug(slug), "stop")
        with self.lock(check_slug(slug)):
            found = self.find(slug)
            st = found.state
            # The decision is saved first, so the supervisor does not start it again meanwhile.
            st.desired, st.asleep, st.wake_at = Desired.STOPPED, False, None
            state_file.save(self.config, slug, st)
            if found.container and found.container.status in ("running", "restarting", "paused"):
                self.backend.stop(found.container.name)
            self.route(slug, RouteState.STOPPED)
        return {"slug": slug, "status": self.find(slug).status}

    def start(self, slug: str) -> dict:
        """Start (or wake) the facility, recreating its container from its volumes if missing."""
        if self.cluster.active():
            return self._change_placed(check_slug(slug), "start")
        with self.lock(check_slug(slug)):
            found = self.find(slug)
            facility = self.config.facility(slug)
            home.ensure_socket_dir(facility)
            info = self.backend.container(facility.container)
            if info is None:
                self._create_volumes(facility, {})
                self.backend.create_container(self.spec(found))
                self.progress(f"recreated container {facility.container} from its volumes")
            if info is None or info.status != "running":
                self.backend.start(facility.container)
            self.wait_healthy(slug)
            st = found.state
            st.desired, st.asleep, st.wake_at, st.slept_at = Desired.RUNNING, False, None, None
            st.health, st.error = Health.OK, None
            state_file.save(self.config, slug, st)
            self.route(slug, RouteState.RUNNING)
        return {"slug": slug, "status": self.find(slug).status}

    def delete(self, slug: str) -> dict:
        """Destroy the facility's keys, then its container, volumes and files (in cluster mode
        its service, and its data on its node)."""
        if self.cluster.active():
            with self.cluster_lock(check_slug(slug)):
                return self._delete_placed(slug)
        with self.lock(check_slug(slug)):
            facility = self.config.facility(slug)
            labels = {Label.INSTANCE: self.config.prefix, Label.FACILITY: slug}
            containers = self.backend.containers(labels)
            volumes = self.backend.volumes(labels)
            has_files = state_file.state_path(self.config, slug).exists()
            if not (containers or volumes or has_files):
                raise FacilityNotFound(f"no facility {slug}")
            wiped = self._wipe(facility, volumes)
            destroyed = self._shred(facility, volumes)
            # Deleting is irreversible: no backup of the facility may open afterwards either.
            backups_destroyed = backup_keys.destroy_for(self.config, slug)
            tombstones.destroy_for(self.config, slug)  # they guarded only those backups
            for info in containers:
                self.backend.remove_container(info.name)
            for volume in volumes:
                self.backend.remove_volume(volume.name)
            self._forget(facility)
            home.log_deletion(self.config, slug)
        return {
            "slug": slug,
            "deleted": True,
            "keys_destroyed": destroyed,
            "backup_keys_destroyed": backups_destroyed,
            **wiped,
        }

    def _delete_placed(self, slug: str) -> dict:
        destroyed = self.cluster.delete(slug)
        # As on a single host: no backup of it may open afterwards, and its tombstones guarded
        # only those backups (both are kept on the manager that made them).
        backups_destroyed = backup_keys.destroy_for(self.config, slug)
        tombstones.destroy_for(self.config, slug)
        self.cluster.forget_tombstones(slug)  # every manager keeps a copy of them
        home.log_deletion(self.config, slug)
        return {
            "slug": slug,
            "deleted": True,
            "node": destroyed["node"],
            "keys_destroyed": destroyed["keys_destroyed"],
            "backup_keys_destroyed": backups_destroyed,
            "receipt": destroyed["receipt"],
            "receipt_key": destroyed["receipt_key"],
        }

    def _change_placed(self, slug: str, action: str) -> dict:
        """Cluster mode: sleep, wake, stop or start on the facility's node, under its lock."""
        with self.cluster_lock(slug):
            return self.cluster.change(slug, action)

    def put_to_sleep(self, slug: str) -> dict:
        """Put the facility to sleep now (no process, no memory); waits up to 30 s for its work."""
        if self.cluster.active():
            return self._change_placed(check_slug(slug), "sleep")
        self.find(check_slug(slug))
        lifecycle.put_to_sleep(
            self.config, self.backend, slug, require_idle=None, **self._waiting()
        )
        return {"slug": slug, "status": self.find(slug).status}

    def wake(self, slug: str) -> dict:
        """Wake an asleep facility now (it also wakes by itself on its first request)."""
        if self.cluster.active():
            return self._change_placed(check_slug(slug), "wake")
        self.find(check_slug(slug))
        lifecycle.wake(self.config, self.backend, slug, reason="operator", **self._waiting())
        return {"slug": slug, "status": self.find(slug).status}

    def rotate_key(self, slug: str) -> dict:
        """New key version in the facility (woken first if asleep); old data stays readable."""
        if self.cluster.active():
            with self.cluster_lock(check_slug(slug)):
                result = self.cluster.manage(slug, "rotate-key", wake="rotate its key")
            return {"slug": slug, **result}
        found = self.find(check_slug(slug))
        if found.status == Status.ASLEEP:
            self.progress(f"waking {slug} to rotate its key")
            lifecycle.wake(self.config, self.backend, slug, reason="operator", **self._waiting())
        with self.lock(slug):
            found = self.find(slug)
            if found.status != Status.RUNNING:
                raise FacilityCommandFailed(f"facility {slug} is {found.status}; start it first")
            result = self._manage(self.config.facility(slug).container, "rotate-key")
        return {"slug": slug, **result}

    def set_quota(
        self, slug: str, quota: str | None = None, conversation_quota: str | None = None
    ) -> dict:
        """Set the facility's storage quotas (woken first if asleep); returns its usage."""
        quota_args = _quota_args(quota, conversation_quota)
        if not quota_args:
            raise ProvisionerError("give a facility quota, --conversation SIZE, or both")
        if self.cluster.active():
            with self.cluster_lock(check_slug(slug)):
                result = self.cluster.manage(slug, "set-quota", *quota_args, wake="set its quota")
            return {"slug": slug, **_usage_fields(result)}
        found = self.find(check_slug(slug))
        if found.status == Status.ASLEEP:
            self.progress(f"waking {slug} to set its quota")
            lifecycle.wake(self.config, self.backend, slug, reason="operator", **self._waiting())
        with self.lock(slug):
            found = self.find(slug)
            if found.status != Status.RUNNING:
                raise FacilityCommandFailed(f"facility {slug} is {found.status}; start it first")
            result = self._manage(self.config.facility(slug).container, "set-quota", *quota_args)
        return {"slug": slug, **_usage_fields(result)}

    def usage(self, found: Found) -> dict:
        """Quota and usage of a running facility (asked inside it); None values otherwise."""
        if found.status != Status.RUNNING:
            return _usage_fields(None)
        try:
            return _usage_fields(self._manage(self.config.facility(found.slug).container, "usage"))
        except ProvisionerError as e:
            self.progress(f"could not read the usage of {found.slug}: {e}")
            return _usage_fields(None)

    def receipts(self, slug: str) -> dict:
        """The facility's deletion receipts and the key that signs them (read in the facility)."""
        if self.cluster.active():
            with self.cluster_lock(check_slug(slug)):
                return {"slug": slug, **self.cluster.manage(slug, "receipts")}
        with self.lock(check_slug(slug)):
            self.find(slug)
            return {"slug": slug, **self._command(slug, "receipts")}

    def receipt_key(self, slug: str) -> dict:
        """The Ed25519 public key that signs the facility's receipts."""
        if self.cluster.active():
            return self.cluster.manage(check_slug(slug), "receipt-key")
        with self.lock(check_slug(slug)):
            self.find(slug)
            return self._command(slug, "receipt-key")

    def lock(self, slug: str):
        """The facility's lock, waited for (with a word to the operator) as commands wait."""
        return locks.facility_lock(self.config, slug, self.lock_wait, self.progress)

    def cluster_lock(self, slug: str):
        """In cluster mode: the facility's lock across every manager, waited for likewise."""
        return self.cluster.locks.hold(slug, self.lock_wait, self.progress)

    def _waiting(self) -> dict:
        return {"lock_wait": self.lock_wait, "on_wait": self.progress}

    def route(self, slug: str, state_name: str | None) -> None:
        """Publish (None: remove) one facility's route and wait until the gateway serves it."""
        routes.apply_route(
            self.config, self.backend, slug, state_name, self.progress, self.clock, self.sleep
        )

    def publish(self) -> int:
        """Rewrite routes.json from Docker's truth and the state files; returns the generation."""
        states = {
            slug: routes.route_state(f.running, f.state) for slug, f in self.discover().items()
        }
        return routes.publish(self.config, states)

    # helpers (also used by `medcell up`)

    def spec(self, found: Found):
        name = _meta(found, "name", found.slug)
        retention = _meta(found, "retention", DEFAULT_RETENTION)
        image_id = self.backend.image_id(self.config.facility_image)
        facility = self.config.facility(found.slug)
        mail = smtp.configured(self.config.home)
        return specs.facility_spec(self.config, facility, name, retention, image_id, mail)

    def wait_healthy(self, slug: str) -> None:
        """Wait until the facility answers on its socket; fail early if its container died."""
        facility_commands.wait_facility(
            self.config,
            self.backend,
            slug,
            self.config.health_timeout,
            progress=self.progress,
            sleep=self.sleep,
            clock=self.clock,
        )

    def _forget(self, facility: Facility) -> None:
        """Remove what the facility has outside Docker: route, state file, socket directory."""
        self.route(facility.slug, None)
        state_file.remove(self.config, facility.slug)
        shutil.rmtree(facility.socket_dir, ignore_errors=True)

    def _refuse_existing(self, names: Facility) -> None:
        if (
            self.backend.container(names.container)
            or self.backend.volume(names.data_volume)
            or self.backend.volume(names.keys_volume)
        ):
            raise FacilityExists(f"facility {names.slug} already exists")

    def _require_image(self) -> None:
        if self.backend.image_id(self.config.facility_image) is None:
            raise DockerError(f"image {self.config.facility_image} is missing; run `medcell up`")

    def _create_volumes(self, names: Facility, meta: dict[str, str]) -> None:
        if self.backend.volume(names.data_volume) is None:
            self.backend.create_volume(
                names.data_volume, self.config.labels(facility=names.slug, role="data", **meta)
            )
        if self.backend.volume(names.keys_volume) is None:
            self.backend.create_volume(
                names.keys_volume, self.config.labels(facility=names.slug, role="keys")
            )

    def _manage(self, container: str, *command: str) -> dict:
        return facility_commands.manage(self.backend, container, *command)

    def _create_admin(self, facility: Facility, username: str) -> dict:
        """Make the first admin; once more if a container restart killed the first attempt."""
        container = facility.container
        try:
            return self._manage(container, "create-admin", "--username", username)
        except FacilityCommandFailed as e:
            if e.exit_code != facility_commands.KILLED:
                raise
        self.progress(f"{container} restarted while being set up; trying again")
        self.wait_healthy(facility.slug)
        return self._manage(container, "create-admin", "--username", username)

    def _command(self, slug: str, *command: str) -> dict:
        """A management command: in the running container, else in a one-off one.

        A one-off container leaves an asleep facility asleep and a stopped one stopped.
        """
        names = self.config.facility(slug)
        info = self.backend.container(names.container)
        if info and info.status == "running":
            return self._manage(names.container, *command)
        self._require_image()
        return facility_commands.manage_offline(
            self.backend, specs.offline_spec(self.config, slug, *command)
        )

    def _wipe(self, names: Facility, volumes: list[VolumeInfo]) -> dict:
        """Delete the patient data with a signed receipt before the volumes go.

        A facility that cannot give one (damaged, keys already gone) is deleted all the same.
        """
        none = {"receipt": None, "receipt_key": None}
        if not {names.data_volume, names.keys_volume} <= {v.name for v in volumes}:
            return none
        try:
            result = self._command(names.slug, "wipe")
        except ProvisionerError as e:
            self.progress(f"no wipe receipt for {names.slug} ({e}); deleting all the same")
            return none
        return {"receipt": result.get("receipt"), "receipt_key": result.get("receipt_key")}

    def _shred(self, names: Facility, volumes: list[VolumeInfo]) -> int:
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
        return facility_commands.shred_offline(
            self.backend, specs.shred_spec(self.config, names.slug)
        )


def _quota_args(quota: str | None, conversation_quota: str | None) -> list[str]:
    """The facility command's arguments for these quotas (validated here, before any change)."""
    args = []
    if quota is not None:
        args += ["--facility", check_quota(quota)]
    if conversation_quota is not None:
        args += ["--conversation", check_quota(conversation_quota)]
    return args


USAGE_FIELDS = ("quota", "conversation_quota", "used_bytes", "quota_bytes", "used_percent")


def _usage_fields(report: dict | None) -> dict:
    """What `show` and `set-quota` print of the facility's usage report (None: not readable)."""
    return {key: (report or {}).get(key) for key in USAGE_FIELDS}


def _cluster_found(config: Config, placed: Placed) -> Found:
    """A facility service as the single-host view of it: a container that runs while its task
    does, asleep at zero replicas, and the metadata its service carries."""
    service, task = placed.service, placed.task
    if placed.running:
        status = "running"
    else:  # at zero replicas: stopped as a sleeping container is; else its task's state
        status = task.state if task is not None and service.replicas > 0 else "exited"
    container = ContainerInfo(
        name=config.facility(service.slug).container,
        status=status,
        health=None,
        labels={},
        networks=(),
        exit_code=0,
        restart_count=0,
    )
    meta = {"name": service.name, "retention": service.retention, "created": service.created}
    labels = {f"medcell.{k}": v for k, v in meta.items() if v}
    return Found(
        service.slug,
        container,
        VolumeInfo(config.facility(service.slug).data_volume, labels),
        FacilityState(
            asleep=service.replicas == 0 and not service.stopped,
            desired=Desired.STOPPED if service.stopped else Desired.RUNNING,
        ),
        node=service.node,
    )


def _meta(found: Found, key: str, default):
    labels = found.data.labels if found.data else {}
    return labels.get(f"medcell.{key}", default)


def _undo_all(steps: list[Callable[[], None]]) -> None:
    for step in reversed(steps):
        try:
            step()
        except (ProvisionerError, OSError):
            pass  # keep the original error; what is left shows up in `facility list`

"""`medcell up` / `down` / `status`: images, gateway and supervisor containers, and repair."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from medcell_common.interfaces import Desired, Label, Status
from medcell_common.times import iso_utc
from provisioner.cli.cluster_stack import ClusterStack
from provisioner.cli.facilities import Facilities, Found, container_status
from provisioner.cli.tls import ensure_certificate
from provisioner.host import (
    facility_commands,
    facility_http,
    home,
    locks,
    smtp,
    specs,
    state_file,
)
from provisioner.host.config import parse_idle
from provisioner.host.docker_backend import ContainerSpec
from provisioner.host.errors import (
    Busy,
    Conflict,
    DockerError,
    FacilityNotFound,
    FacilityUnreachable,
    HealthTimeout,
    ImageBuildFailed,
    InvalidArgument,
)

GATEWAY_UID = 10001
REPAIR_LOCK_WAIT = 30.0  # the supervisor may be sleeping or waking that facility right now
PROBE_WORKERS = 16
PROBE_TIMEOUT = 1.0  # per facility
PROBE_BUDGET = 5.0  # for all of them: `medcell status` must stay quick with many facilities
# When the Debian packages under an image were fetched (deploy/build-base.sh, build-images.sh).
BASE_BUILT_LABEL = "medcell.base.built"
# The metrics network: its containers cannot talk to each other (there is only the supervisor)
# and have no route out (no masquerading); Docker's publish still reaches the supervisor.
METRICS_NETWORK_OPTIONS = {
    "com.docker.network.bridge.enable_icc": "false",
    "com.docker.network.bridge.enable_ip_masquerade": "false",
}

Identity = tuple[str, tuple[int, int] | None]
# The supervisor's user, the Docker socket's gid (for group_add) and the socket's host path.
SupervisorIdentity = tuple[str, int | None, str]


def repo_root() -> Path:
    """The folder that holds the provisioner package: a checkout (deploy/ beside it) or
    site-packages (an installed package, which has no image build scripts)."""
    return Path(__file__).resolve().parents[2]


def gateway_identity() -> Identity:
    """The gateway's user, and who must own its files: uid 10001 as root, else the operator."""
    if os.geteuid() == 0:
        return f"{GATEWAY_UID}:{GATEWAY_UID}", (GATEWAY_UID, GATEWAY_UID)
    # Without root we cannot chown the key to 10001, so the gateway runs as its owner.
    return f"{os.getuid()}:{os.getgid()}", None


def supervisor_identity() -> SupervisorIdentity:
    """The operator's uid:gid (so the files it writes stay the operator's) and the Docker socket."""
    host = os.environ.get("DOCKER_HOST", "")
    path = host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"
    try:
        gid = os.stat(path).st_gid
    except OSError as e:
        raise DockerError(f"the supervisor needs the local Docker socket {path} ({e})") from e
    return f"{os.getuid()}:{os.getgid()}", gid, path


def build_images(progress: Callable[[str], None]) -> None:
    """Run deploy/build-images.sh, which builds only what is missing or changed."""
    progress("building medcell images (this takes a few minutes the first time) ...")
    _run_build_script({})


def refresh_images(progress: Callable[[str], None]) -> None:
    """Rebuild the bases from today's Debian packages, fetch the locked wheels, rebuild all."""
    progress("rebuilding every medcell image from current Debian packages (a few minutes) ...")
    _run_build_script({"MEDCELL_REFRESH": "1"})


def _run_build_script(extra_env: dict[str, str]) -> None:
    script = repo_root() / "deploy" / "build-images.sh"
    if not script.exists():
        raise ImageBuildFailed(
            "this installation has no image build scripts (an installed package): build the "
            "medcell images with `make images` in a medcell checkout"
        )
    env = {**os.environ, "PYTHON": sys.executable, **extra_env}
    result = subprocess.run(["bash", str(script)], cwd=repo_root(), env=env, stdout=sys.stderr)
    if result.returncode != 0:
        raise ImageBuildFailed(f"building the images failed (exit code {result.returncode})")


class Stack:
    """The installation around the facilities: images, run dirs, gateway, supervisor, routes."""

    def __init__(
        self,
        facilities: Facilities,
        build: Callable[[Callable[[str], None]], None] = build_images,
        refresh: Callable[[Callable[[str], None]], None] = refresh_images,
        identity: Callable[[], Identity] = gateway_identity,
        supervisor: Callable[[], SupervisorIdentity] = supervisor_identity,
        smtp_settings: Callable[[], smtp.SmtpSettings | None] = smtp.from_env,
    ):
        self.facilities = facilities
        self.config = facilities.config
        self.backend = facilities.backend
        self.progress = facilities.progress
        # Waiting (for health) on the facilities' timer, which tests replace.
        self.clock, self.sleep = facilities.clock, facilities.sleep
        self.build = build
        self.refresh = refresh
        self.identity = identity
        self.supervisor_identity = supervisor
        self.smtp_settings = smtp_settings
        self.cluster = ClusterStack(self)

    def up(self, refresh: bool = False) -> dict:
        """Build missing images, repair and upgrade facilities, start gateway and supervisor.

        With refresh, every image is rebuilt first from current Debian packages and the locked
        wheels; the usual upgrade below then moves every facility, the gateway and the
        supervisor onto the new images, one facility at a time.
        """
        home.ensure_home(self.config)
        # First, so that facilities are repaired with mail on or off as the operator now says.
        mail = self.smtp_settings()
        smtp.save(self.config.home, mail)
        if refresh:
            self.refresh(self.progress)
            self._require_images()
        else:
            self._ensure_images()
        # In cluster mode the gateway and the supervisor are global services (cluster_stack.py).
        cluster = self.cluster.active()
        user, owner = self.identity()
        ensure_certificate(self.config, owner)
        self._ensure_run_dirs(owner)
        repaired = self.cluster.prepare_node(owner) if cluster else self._ensure_edge_network()
        # A facility service is Swarm's to keep running on its node: its task's container is
        # named by Swarm, so it is no missing container here. (A facility this host had before
        # it joined the cluster is still a container, repaired as on one host.)
        services = self.facilities.cluster.placed() if cluster else {}
        for found in self.facilities.discover().values():
            if found.slug not in services:
                repaired += self._repair(found)
        # Before the gateway starts, so it starts with the full table; in a cluster this node's
        # own facilities (their tasks' containers carry the facility labels), the rest remote.
        self.facilities.publish()
        if cluster:
            repaired += self.cluster.ensure(user)
            # Every node's supervisor answers now: each gets the cluster's routes map (a node
            # that does not is named on stderr and gets it with the next push).
            self.facilities.cluster.push_routes()
        else:
            repaired += self._ensure_gateway(user)
            repaired += self._ensure_supervisor()
        result = {
            "url": self.config.base_url,
            "gateway": self.config.gateway_container,
            "status": self.status(),
            "supervisor": self.supervisor_status(),
            "repaired": repaired,
            "mail": "on" if mail else "off",
        }
        if refresh:
            result["refreshed"] = {
                image: {"id": self.backend.image_id(image), "base_built": built}
                for image, built in self.base_built().items()
            }
        return result

    def prepare_node(self) -> list[str]:
        """What `cluster join` does on a new node so that the stack's tasks can start there:
        MEDCELL_HOME with the gateway's certificate, run folders, routes, the TLS copy."""
        home.ensure_home(self.config)
        _, owner = self.identity()
        ensure_certificate(self.config, owner)
        self._ensure_run_dirs(owner)
        done = self.cluster.prepare_node(owner)
        self.facilities.publish()
        return done

    def down(self) -> dict:
        """Stop and remove the gateway; facilities, the supervisor and all data stay."""
        if self.cluster.active():
            return self.cluster.down()
        existed = self.backend.container(self.config.gateway_container) is not None
        self.backend.remove_container(self.config.gateway_container)
        self.backend.remove_network(self.config.edge_network)
        return {"gateway": self.config.gateway_container, "removed": existed}

    def status(self) -> str:
        """The gateway's status: running, stopped or unhealthy (in a cluster: on every node)."""
        if self.cluster.active():
            return self.cluster.status(self.config.gateway_container)[0]
        return container_status(self.backend.container(self.config.gateway_container))

    def supervisor_status(self) -> str:
        if self.cluster.active():
            return self.cluster.status(self.config.supervisor_container)[0]
        return container_status(self.backend.container(self.config.supervisor_container))

    def overview(self) -> dict:
        """`medcell status`: gateway, supervisor, facility counts, next deadline, image age; in
        cluster mode also each node's gateway and supervisor task."""
        if self.cluster.active():
            gateway, gateway_nodes = self.cluster.status(self.config.gateway_container)
            supervisor, supervisor_nodes = self.cluster.status(self.config.supervisor_container)
            result = installation_status(self.facilities, gateway, supervisor)
            result["gateway_nodes"] = gateway_nodes
            result["supervisor_nodes"] = supervisor_nodes
        else:
            result = installation_status(self.facilities, self.status(), self.supervisor_status())
        # The oldest of them: how long ago the last security updates reached the images.
        result["base_built"] = min(filter(None, self.base_built().values()), default=None)
        return result

    def base_built(self) -> dict[str, str | None]:
        """Each image's build date of the Debian packages under it (None: unknown or missing)."""
        return {
            image: self.backend.image_labels(image).get(BASE_BUILT_LABEL)
            for image in self._images()
        }

    # up's steps

    def _images(self) -> tuple[str, str, str]:
        return (self.config.facility_image, self.config.gateway_image, self.config.supervisor_image)

    def _ensure_images(self) -> None:
        if any(self.backend.image_id(image) is None for image in self._images()):
            self.build(self.progress)
            self._require_images()

    def _require_images(self) -> None:
        missing = [image for image in self._images() if self.backend.image_id(image) is None]
        if missing:
            raise ImageBuildFailed(f"images still missing after the build: {', '.join(missing)}")

    def _ensure_run_dirs(self, gateway_owner: tuple[int, int] | None) -> None:
        """Sockets and acknowledgements live here; each dir belongs to the one who writes it."""
        for directory in (
            self.config.run_dir,
            self.config.run_dir / "facilities",
            self.config.supervisor_run_dir,
            self.config.gateway_run_dir,
        ):
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chmod(directory, 0o755)
        if gateway_owner is not None:
            os.chown(self.config.gateway_run_dir, *gateway_owner)

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

    def _repair(self, found: Found) -> list[str]:
        """Bring one facility to the current spec and its desired state; say what was done."""
        try:
            with locks.facility_lock(self.config, found.slug, REPAIR_LOCK_WAIT, self.progress):
                return self._repair_locked(self.facilities.find(found.slug))
        except FacilityNotFound:
            return []  # deleted by another command meanwhile: nothing left to repair
        except Busy:
            return [f"skipped {found.slug}: another command is changing it"]
        except HealthTimeout as e:
            return [f"{found.slug} did not start: {e}"]

    def _repair_locked(self, found: Found) -> list[str]:
        slug, done = found.slug, []
        names = self.config.facility(slug)
        home.ensure_socket_dir(names)
        if not state_file.state_path(self.config, slug).exists():
            # An installation from before sleep/wake: everything should run (deadlines!);
            # the idle timeout puts what nobody uses to sleep soon enough.
            idle = found.data.labels.get(Label.IDLE) if found.data else None
            found.state.idle = None if idle is None else _idle_seconds(idle)
            state_file.save(self.config, slug, found.state)
        if found.data is None:
            return done  # a container without its data volume: nothing to rebuild it from
        spec = self.facilities.spec(found)
        info = found.container
        if info is not None and info.labels.get(Label.CONFIG) != spec.labels[Label.CONFIG]:
            self.progress(f"upgrading {names.container} to the current facility image and settings")
            if info.status == "running":
                self.backend.stop(names.container)  # graceful: in-flight requests finish
            self.backend.remove_container(names.container)
            self.backend.create_container(spec)
            done.append(f"upgraded {names.container}")
        elif info is None:
            self.backend.create_container(spec)
            done.append(f"recreated container {names.container} from its volumes")
        st = found.state
        current = self.backend.container(names.container)
        if (
            st.desired == Desired.RUNNING
            and not st.asleep
            and current
            and current.status != "running"
        ):
            self.backend.start(names.container)
            facility_commands.wait_facility(
                self.config,
                self.backend,
                slug,
                self.config.health_timeout,
                progress=self.progress,
                sleep=self.sleep,
                clock=self.clock,
            )
            done.append(f"started {names.container}")
        return done

    def _ensure_gateway(self, user: str) -> list[str]:
        name = self.config.gateway_container
        image_id = self.backend.image_id(self.config.gateway_image)
        done = self._ensure_container(specs.gateway_spec(self.config, user, image_id))
        facility_commands.wait_healthy(
            self.backend,
            name,
            self.config.health_timeout,
            progress=self.progress,
            sleep=self.sleep,
            clock=self.clock,
        )
        return done

    def _ensure_supervisor(self) -> list[str]:
        """The supervisor on a network of its own: the mail network when it relays mail, else
        the metrics network; either publishes its /metrics on the host at MEDCELL_METRICS_BIND."""
        user, gid, socket = self.supervisor_identity()
        image_id = self.backend.image_id(self.config.supervisor_image)
        mail = smtp.configured(self.config.home)
        if mail:
            network, other = self.config.mail_network, self.config.metrics_network
            done = self._ensure_supervisor_network(network)
        else:
            network, other = self.config.metrics_network, self.config.mail_network
            done = self._ensure_supervisor_network(network, METRICS_NETWORK_OPTIONS)
        spec = specs.supervisor_spec(
            self.config, user, gid, socket, image_id, network, publish_metrics=True
        )
        done += self._ensure_container(spec)
        if self.backend.network(other) is not None:
            # The supervisor was recreated without it above: nothing is attached any more.
            self.backend.remove_network(other)
            done.append(f"removed network {other}")
        return done

    def _ensure_supervisor_network(
        self, name: str, options: dict[str, str] | None = None
    ) -> list[str]:
        """A bridge of the supervisor's own: nobody else is ever attached to it."""
        if self.backend.network(name) is not None:
            return []
        try:
            self.backend.create_pooled_network(
                name,
                self.config.subnet_pool,
                self.config.labels(role="supervisor"),
                internal=False,
                options=options,
            )
        except Conflict:
            return []
        return [f"created network {name}"]

    def _ensure_container(self, spec: ContainerSpec) -> list[str]:
        """Create or keep a long-running container; recreate it when its fingerprint changed."""
        name, done = spec.name, []
        info = self.backend.container(name)
        if info and info.labels.get(Label.CONFIG) != spec.labels[Label.CONFIG]:
            self.backend.remove_container(name)
            info = None
            done.append(f"recreated {name} for new settings or image")
        if info is None:
            self.backend.create_container(spec)
            if not done:
                done.append(f"created {name}")
        if info is None or info.status != "running":
            try:
                self.backend.start(name)
            except DockerError as e:
                # A half-started container (e.g. port taken) would block the next `up`.
                self.backend.remove_container(name)
                if "already in use" in str(e) or "already allocated" in str(e):
                    raise DockerError(self._ports_taken(spec)) from e
                raise
        return done

    def _ports_taken(self, spec: ContainerSpec) -> str:
        """What to change when a container's published port is taken on the host."""
        if spec.name == self.config.supervisor_container:
            host, port = self.config.metrics_bind
            return f"port {host}:{port} is taken; set MEDCELL_METRICS_BIND to a free address:port"
        return (
            f"ports {self.config.gateway_port}/{self.config.gateway_http_port} are "
            "taken; set MEDCELL_GATEWAY_PORT and MEDCELL_GATEWAY_HTTP_PORT"
        )


def _idle_seconds(text: str) -> int | None:
    try:
        return parse_idle(text)
    except InvalidArgument:
        return None


def installation_status(
    facilities: Facilities, gateway: str, supervisor: str, clock: Callable[[], float] = time.time
) -> dict:
    """Counts by status and the next deadline (asleep: wake_at; awake: asked over its socket)."""
    found = facilities.everywhere()
    counts = {str(status): 0 for status in Status}
    deadlines: list[tuple[float, str]] = []
    awake = []
    for slug, f in found.items():
        status = f.status
        counts[status] += 1
        if status == Status.ASLEEP and f.state.wake_at is not None:
            deadlines.append((f.state.wake_at, slug))
        elif f.running and not f.state.asleep:
            awake.append(slug)
    deadlines += _probe_deadlines(facilities.config, awake)
    deadline = min(deadlines, default=None)
    result = {
        "gateway": gateway,
        "supervisor": supervisor,
        "facilities": {"total": len(found), **counts},
        # Awake facilities against the cap the supervisor keeps (MEDCELL_MAX_AWAKE).
        "awake": counts[Status.RUNNING],
        "max_awake": facilities.config.max_awake,
        "unhealthy": [
            {"slug": slug, "error": f.state.error}
            for slug, f in found.items()
            if f.status == Status.UNHEALTHY
        ],
        "next_deadline": iso_utc(deadline[0]) if deadline else None,
        "next_deadline_in": round(max(0.0, deadline[0] - clock())) if deadline else None,
        "next_deadline_facility": deadline[1] if deadline else None,
    }
    if facilities.cluster.active():
        result["facility_nodes"] = {slug: f.node for slug, f in found.items()}
    return result


def _probe_deadlines(config, slugs: list[str]) -> list[tuple[float, str]]:
    """Ask awake facilities for their next deadline in parallel; slow ones are left out."""
    if not slugs:
        return []

    def probe(slug: str) -> tuple[float, str] | None:
        try:
            reported = facility_http.status(config, slug, timeout=PROBE_TIMEOUT).next_deadline
        except FacilityUnreachable:
            return None
        return None if reported is None else (reported, slug)

    pool = ThreadPoolExecutor(max_workers=min(PROBE_WORKERS, len(slugs)))
    futures = [pool.submit(probe, slug) for slug in slugs]
    done, _ = wait(futures, timeout=PROBE_BUDGET)
    pool.shutdown(wait=False, cancel_futures=True)
    return [r for f in done if (r := f.result()) is not None]

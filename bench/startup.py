"""What a wake costs a facility container, images side by side: CPU from start to first answer.

For each image in MEDCELL_BENCH_IMAGES (comma-separated; default the facility image of
MEDCELL_IMAGE_TAG) and each seccomp profile in MEDCELL_BENCH_SECCOMP (comma-separated: `facility`,
the facility's own as a real facility gets it, the default; `docker`, Docker's default), a facility
is made over fresh volumes by its own `create-admin`, and its container created from the
provisioner's own container spec (hardened by the same backend, its socket in a host directory).
Each round starts every image's container in turn (as a wake does:
`docker start` of a stopped container), asks /healthz on its socket every 5 ms and reads the
container cgroup's CPU the moment it answers, and again 1 s later, then stops it. The cgroup is
made at each start, so its CPU is that start's alone: runc's init in the container and the
facility's process. MEDCELL_BENCH_ROUNDS rounds (default 9); medians. Asserts nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import docker

from provisioner.host.docker_backend import ContainerSpec, DockerBackend
from provisioner.host.specs import (
    FACILITY_BIND,
    FACILITY_RUN_DIR,
    FACILITY_SECCOMP,
    FACILITY_USER,
    MANAGE,
)

FACILITY_UID = 10001
POLL = 0.005
AFTER = 1.0  # seconds after the first answer: what the start does once it answers


def cgroup_cpu_ns(container_id: str) -> int:
    """The container's CPU so far (cgroup v1 cpuacct under cgroupfs, or v2)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text())
    for path in (
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
        f"/sys/fs/cgroup/docker/{container_id}/cpu.stat",
    ):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
        except OSError:
            continue
    raise RuntimeError("no cgroup CPU figures for the container")


def answers(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


PROFILES = {"facility": FACILITY_SECCOMP, "docker": ""}


class Facility:
    def __init__(
        self,
        backend: DockerBackend,
        prefix: str,
        index: int,
        image: str,
        work: Path,
        profile: str = "facility",
    ):
        self.backend, self.image, self.profile = backend, image, profile
        self.label = f"{image} [{profile}]"
        self.name = f"{prefix}-{index}"
        self.volumes = {f"{self.name}-data": "/data", f"{self.name}-keys": "/keys"}
        self.run_dir = work / str(index)
        self.run_dir.mkdir(mode=0o711)
        os.chown(self.run_dir, FACILITY_UID, FACILITY_UID)
        self.environment = {"MEDCELL_FACILITY": "bench", "MEDCELL_FACILITY_NAME": "Bench"}
        code, _, err = backend.run_once(self._spec(f"{self.name}-admin", [*MANAGE, "create-admin"]))
        if code != 0:
            raise RuntimeError(f"create-admin in {image}: {err[-500:]}")
        backend.create_container(self._spec(self.name, None, restart="unless-stopped"))

    def _spec(self, name: str, command: list[str] | None, restart: str | None = None):
        return ContainerSpec(
            name=name,
            image=self.image,
            user=FACILITY_USER,
            labels={},
            environment={**self.environment, "MEDCELL_BIND": FACILITY_BIND},
            volumes=self.volumes,
            rw_binds={str(self.run_dir): FACILITY_RUN_DIR},
            command=command,
            restart=restart,
            healthcheck=False,
            seccomp=PROFILES[self.profile],
        )

    def wake(self) -> tuple[float, float, float]:
        """(CPU ms at the first answer, CPU ms 1 s later, seconds until it answered)."""
        sock = self.run_dir / "app.sock"
        began = time.perf_counter()
        self.backend.start(self.name)
        container_id = self.backend.client.containers.get(self.name).id
        while not answers(sock):
            time.sleep(POLL)
        latency = time.perf_counter() - began
        at_answer = cgroup_cpu_ns(container_id) / 1e6
        time.sleep(AFTER)
        later = cgroup_cpu_ns(container_id) / 1e6
        self.backend.stop(self.name, timeout=20)
        return at_answer, later, latency

    def remove(self, client) -> None:
        self.backend.remove_container(self.name)
        for volume in self.volumes:
            try:
                client.volumes.get(volume).remove(force=True)
            except docker.errors.NotFound:
                pass


def main() -> None:
    tag = os.environ.get("MEDCELL_IMAGE_TAG", "latest")
    images = os.environ.get("MEDCELL_BENCH_IMAGES", f"medcell-facility:{tag}").split(",")
    profiles = os.environ.get("MEDCELL_BENCH_SECCOMP", "facility").split(",")
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        known = sorted(PROFILES)
        raise SystemExit(f"MEDCELL_BENCH_SECCOMP: unknown {sorted(unknown)}; known {known}")
    variants = [(image, profile) for image in images for profile in profiles]
    rounds = int(os.environ.get("MEDCELL_BENCH_ROUNDS", "9"))
    client = docker.from_env()
    backend = DockerBackend(client)
    prefix = f"mcstart{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="medcell-startup-"))
    work.chmod(0o711)
    facilities: list[Facility] = []
    results: dict[str, list[tuple[float, float, float]]] = {}
    try:
        for index, (image, profile) in enumerate(variants):
            facilities.append(Facility(backend, prefix, index, image, work, profile))
            results[facilities[-1].label] = []
        for _ in range(rounds):
            for facility in facilities:
                results[facility.label].append(facility.wake())
    finally:
        for facility in facilities:
            facility.remove(client)
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(label) for label in results)
    for label, runs in results.items():
        at_answer = [r[0] for r in runs]
        print(
            f"{label:<{width}}  container CPU from start to first answer: "
            f"median {statistics.median(at_answer):.0f} ms (min {min(at_answer):.0f}, "
            f"max {max(at_answer):.0f}); {AFTER:.0f} s later "
            f"{statistics.median(r[1] for r in runs):.0f} ms; "
            f"answered after {statistics.median(r[2] for r in runs):.2f} s ({len(runs)} wakes)",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Provisioner figures: create-until-healthy time, idle memory, image sizes, 50 facilities at once.

Runs in a throw-away installation (own Docker prefix and MEDCELL_HOME) and removes everything it
made, also after a failure. Sizes: MEDCELL_BENCH_RUNS (default 5), MEDCELL_BENCH_FLEET (default 50).
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

import docker

from devsupport import remove_installation
from provisioner.cli.facilities import Facilities
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend

MIB = 1024 * 1024
IDLE_SECONDS = 10  # let the container settle before reading its memory


def memory_bytes(client, name: str) -> int:
    """Memory as `docker stats` shows it: usage minus inactive page cache."""
    stats = client.containers.get(name).stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get(
        "total_inactive_file", stats.get("stats", {}).get("cache", 0)
    )
    return stats.get("usage", 0) - cache


def timed_cli_create(env: dict, slug: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "facility", "create", slug, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return elapsed


def run(client, env: dict, runs: int, fleet: int) -> list[tuple[str, str]]:
    rows = []
    config = Config.from_env(env)
    facilities = Facilities(config, DockerBackend(client))
    for image in (config.facility_image, config.gateway_image):
        size = client.images.get(image).attrs["Size"] / MIB
        rows.append((f"image size {image}", f"{size:.0f} MiB"))

    times = []
    for i in range(runs):
        times.append(timed_cli_create(env, f"bench{i}"))
        if i < runs - 1:
            facilities.delete(f"bench{i}")
    rows.append(
        (
            f"`medcell facility create` until healthy, median of {runs}",
            f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})",
        )
    )
    time.sleep(IDLE_SECONDS)
    idle = memory_bytes(client, config.facility(f"bench{runs - 1}").container)
    rows.append(("idle memory of one facility container", f"{idle / MIB:.1f} MiB"))
    facilities.delete(f"bench{runs - 1}")

    started = time.perf_counter()
    for i in range(fleet):
        facilities.create(f"fleet{i}")
    total = time.perf_counter() - started
    rows.append((f"{fleet} facilities created one after another", f"{total:.1f} s"))
    time.sleep(IDLE_SECONDS)
    memory = sum(memory_bytes(client, config.facility(f"fleet{i}").container) for i in range(fleet))
    rows.append((f"memory of all {fleet} facility containers", f"{memory / MIB:.0f} MiB"))
    statuses = [f["status"] for f in facilities.list()]
    rows.append((f"{fleet} facilities running after creation", str(statuses.count("running"))))

    deletes = []
    for i in range(fleet):
        started = time.perf_counter()
        facilities.delete(f"fleet{i}")
        deletes.append(time.perf_counter() - started)
    rows.append(
        ("`facility delete` (shred + remove), median", f"{statistics.median(deletes):.2f} s")
    )
    return rows


def main() -> None:
    """Print the provisioner's figures as a table."""
    runs = int(os.environ.get("MEDCELL_BENCH_RUNS", "5"))
    fleet = int(os.environ.get("MEDCELL_BENCH_FLEET", "50"))
    prefix = f"mcbench{secrets.token_hex(3)}"
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="medcell-bench-") as home:
        env = {**os.environ, "MEDCELL_HOME": home, "MEDCELL_DOCKER_PREFIX": prefix}
        try:
            rows = run(client, env, runs, fleet)
        finally:
            remove_installation(client, prefix)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()

"""Cluster figures through a lab of its own (deploy/lab.sh, named `bench`; only one lab runs on
a machine at a time, so nothing else may hold one meanwhile).

1. Create time: MEDCELL_BENCH_CLUSTER_FACILITIES (default 300) facilities made one after the
   other with `medcell facility create` on node1, placed by the CLI over the three nodes, each
   with a short idle time (MEDCELL_BENCH_CLUSTER_IDLE, default 1m) so they fall asleep while the
   rest are made: the first, the median and the last create, and how they were spread.
2. What one Swarm manager costs with MEDCELL_BENCH_CLUSTER_SERVICES (default 3,500) facility
   services at 0 replicas, made from the real facility spec through node1's engine: node1's
   dockerd memory before and after, `docker service ls` on node1, and what a node's supervisor
   asks of the manager each discovery (every 30 s): the listing of every facility service, as
   before, against the listing of its own node's (a label filter), each timed and with the
   dockerd CPU it costs. These services are pinned to node names no lab node carries (three of
   them, a third each), so no supervisor acts on them and no task is ever started.

Prints figures; asserts nothing. The lab is taken down at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.lab import Lab
from provisioner.host import specs
from provisioner.host.config import Config
from provisioner.host.service_spec import facility_service_spec
from provisioner.host.swarm import Swarm

MIB = 1024 * 1024
# Nodes no lab node is: what the measured services are pinned to (a third each).
PLACEHOLDER_NODES = ("benchnodea", "benchnodeb", "benchnodec")
TIMED_RUNS = 5


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_times(lab: Lab, count: int, idle: str) -> list[tuple[str, str]]:
    seconds, nodes = [], Counter()
    for i in range(count):
        started = time.monotonic()
        result = lab.run(
            "node1", "medcell", "facility", "create", f"b{i:04d}", "--idle", idle, "--json"
        )
        seconds.append(time.monotonic() - started)
        if result.returncode != 0:
            raise SystemExit(f"Error: create {i} failed: {result.stderr.strip()[-500:]}")
        nodes[json.loads(result.stdout)["node"]] += 1
        if (i + 1) % 50 == 0:
            print(f"  {i + 1} created, last {seconds[-1]:.2f} s", flush=True)
    spread = ", ".join(f"{node} {n}" for node, n in sorted(nodes.items()))
    return [
        (f"create, {count} facilities over 3 nodes: first", f"{seconds[0]:.2f} s"),
        ("create: median", f"{statistics.median(seconds):.2f} s"),
        ("create: last", f"{seconds[-1]:.2f} s"),
        ("create: slowest", f"{max(seconds):.2f} s"),
        ("placed", spread),
    ]


def manager_cost(lab: Lab, count: int) -> list[tuple[str, str]]:
    client = lab.engine("node1", timeout=300)
    swarm = Swarm(client)
    pid = lab.dockerd_pid("node1")
    config = Config.from_env({**os.environ, "MEDCELL_HOME": str(lab.directory / "node" / "home")})
    rows = []
    before_services = len(swarm.facility_services())
    # By its id, as `facility create` names it: a name would make the manager ask a registry.
    image_id = client.images.get(config.facility_image).id
    rss_before = _rss(pid)
    rows.append((f"node1 dockerd memory, {before_services} facility services", _mib(rss_before)))

    def make(i: int) -> None:
        slug = f"s{i:04d}"
        facility = config.facility(slug)
        spec = specs.facility_spec(config, facility, slug, "7d", image_id)
        node = PLACEHOLDER_NODES[i % len(PLACEHOLDER_NODES)]
        swarm.create_service(facility_service_spec(spec, node, replicas=0))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, range(count)))
    made = time.monotonic() - started
    rows.append((f"{count} services at 0 replicas created", f"{made:.1f} s ({count / made:.0f}/s)"))
    time.sleep(10)  # let the manager settle (Raft snapshots, allocator) before reading memory
    rss_after = _rss(pid)
    total = len(swarm.facility_services())
    rows.append((f"node1 dockerd memory, {total} facility services", _mib(rss_after)))
    rows.append(("  per 1,000 services", _mib((rss_after - rss_before) * 1000 / count)))

    ls = []
    for _ in range(TIMED_RUNS):
        started = time.monotonic()
        result = lab.run("node1", "docker", "service", "ls", "-q")
        ls.append(time.monotonic() - started)
        assert result.returncode == 0, result.stderr
    lines = len(result.stdout.split())
    rows.append(
        (f"`docker service ls` ({lines} services), median", f"{statistics.median(ls):.2f} s")
    )

    for label, node in (
        ("all facility services", None),
        ("one node's (label filter)", "benchnodea"),
    ):
        walls, cpus = [], []
        for _ in range(TIMED_RUNS):
            cpu = _cpu_seconds(pid)
            started = time.monotonic()
            listed = swarm.facility_services(node)
            walls.append(time.monotonic() - started)
            cpus.append(_cpu_seconds(pid) - cpu)
        rows.append(
            (
                f"supervisor discovery, {label}: {len(listed)} listed",
                f"{statistics.median(walls) * 1000:.0f} ms, manager CPU "
                f"{statistics.median(cpus) * 1000:.0f} ms (median of {TIMED_RUNS})",
            )
        )
    client.close()
    return rows


def _mib(value: float) -> str:
    return f"{value / MIB:.0f} MiB"


def main() -> None:
    facilities = int(os.environ.get("MEDCELL_BENCH_CLUSTER_FACILITIES", "300"))
    services = int(os.environ.get("MEDCELL_BENCH_CLUSTER_SERVICES", "3500"))
    idle = os.environ.get("MEDCELL_BENCH_CLUSTER_IDLE", "1m")
    lab = Lab()
    lab.script("down")
    started = time.monotonic()
    up = lab.script("up")
    if up.returncode != 0:
        raise SystemExit(f"Error: the lab did not start: {up.stderr[-1000:]}")
    _print([("lab up", f"{time.monotonic() - started:.0f} s")])
    try:
        if facilities:
            _print(create_times(lab, facilities, idle))
        if services:
            _print(manager_cost(lab, services))
    finally:
        lab.script("down")


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", flush=True)


if __name__ == "__main__":
    main()

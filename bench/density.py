"""Density figures: many facilities on one host, idle ones asleep, woken by their first request.

With N facilities provisioned (MEDCELL_BENCH_DENSITY, default 300; a list like `300,1000` measures
at each size on the way up) in a throw-away installation:
create time of the first and the last, `medcell facility list` time, host CPU and memory once the
idle ones sleep, wake-to-answer latency through the gateway, and CPU and memory of an awake idle
facility. Facilities are created with a short idle time (MEDCELL_BENCH_IDLE, default 30s) so they
fall asleep while the rest are made. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from bench.common import percentile
from devsupport import free_port, localhost, remove_installation
from medcell_common.origins import facility_origin

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
CPU_WINDOW = 60  # seconds of host CPU sampled once everything sleeps
AWAKE_SAMPLE = 5  # facilities kept awake (idle "never") to measure one awake idle facility
WAKE_SAMPLE = 20  # asleep facilities woken by a first request, one after another


def medcell(env: dict, *args: str) -> dict | list:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *args, "--json"],
        env=env, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"medcell {' '.join(args)}: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def host_cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def host_cpu_percent_of_one_core(seconds: float) -> float:
    busy0, total0 = host_cpu_jiffies()
    time.sleep(seconds)
    busy1, total1 = host_cpu_jiffies()
    cores = os.cpu_count() or 1
    return 100.0 * cores * (busy1 - busy0) / max(1, total1 - total0)


def memory_in_use() -> int:
    info = {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
    }
    return info["MemTotal"] - info["MemAvailable"]


def container_memory(client, name: str) -> int:
    """Memory as `docker stats` shows it: usage minus inactive page cache."""
    stats = client.containers.get(name).stats(stream=False)["memory_stats"]
    inner = stats.get("stats", {})
    return stats.get("usage", 0) - inner.get("total_inactive_file", inner.get("inactive_file", 0))


def container_cpu_ns(client, name: str) -> int:
    return client.containers.get(name).stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"]


def wait_until(predicate, timeout: float, pause: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
    return False


def statuses(env: dict) -> dict[str, str]:
    return {row["slug"]: row["status"] for row in medcell(env, "facility", "list")}


def medcell_cpu_seconds(client, env: dict) -> float:
    """CPU seconds used so far by what medcell runs while idle: gateway, supervisor, Docker."""
    total = 0.0
    for name in ("gateway", "supervisor"):
        total += container_cpu_ns(client, f"{env['MEDCELL_DOCKER_PREFIX']}-{name}") / 1e9
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            comm = (pid / "comm").read_text().strip()
            if comm not in ("dockerd", "containerd"):
                continue
            fields = (pid / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def idle_figures(client, env: dict, count: int) -> list[tuple[str, str]]:
    """Host and medcell CPU and memory once all `count` facilities sleep."""
    rows = []
    asleep = wait_until(
        lambda: sum(s == "asleep" for s in statuses(env).values()) >= count, timeout=900
    )
    counts = _counts(statuses(env))
    rows.append(
        (f"[{count}] statuses once idle ones sleep", counts if asleep else f"{counts} (timed out)")
    )
    time.sleep(10)  # let the last stops and route reloads settle
    before = medcell_cpu_seconds(client, env)
    began = time.monotonic()
    cpu = host_cpu_percent_of_one_core(CPU_WINDOW)
    ours = 100.0 * (medcell_cpu_seconds(client, env) - before) / (time.monotonic() - began)
    rows.append(
        (
            f"[{count}] CPU, all asleep, {CPU_WINDOW} s",
            f"host {cpu:.1f} % of one core; gateway + supervisor + Docker {ours:.1f} %",
        )
    )
    rows.append((f"[{count}] host memory in use, all asleep", f"{memory_in_use() / MIB:.0f} MiB"))
    return rows


class Rows(list):
    """Figures, also printed as they come: a long run that fails late still shows what it had."""

    def append(self, row: tuple[str, str]) -> None:
        super().append(row)
        print(f"  ... {row[0]}: {row[1]}", flush=True)

    def __iadd__(self, rows):
        for row in rows:
            self.append(row)
        return self


def run(client, env: dict, sizes: list[int], idle: str, parallel: int) -> list[tuple[str, str]]:
    rows = Rows()
    home = Path(env["MEDCELL_HOME"])
    rows.append(("host memory in use before `medcell up`", f"{memory_in_use() / MIB:.0f} MiB"))
    medcell(env, "up")
    count = max(sizes)
    slugs = [f"d{i:04d}" for i in range(count)]
    times: list[float] = []
    made = 0
    started = time.perf_counter()
    for size in sorted(sizes):
        batch = slugs[made:size]
        with ThreadPoolExecutor(parallel) as pool:
            times += list(
                pool.map(
                    lambda s: timed(medcell, env, "facility", "create", s, "--idle", idle), batch
                )
            )
        made = size
        rows.append(
            (
                f"[{size}] facilities created ({parallel} at a time)",
                f"{time.perf_counter() - started:.0f} s so far; create time of the "
                f"{size}th {times[-1]:.2f} s",
            )
        )
        list_times = [timed(medcell, env, "facility", "list") for _ in range(3)]
        rows.append((f"[{size}] `facility list`, median of 3", _s(list_times)))
        rows += idle_figures(client, env, size)
    rows.append(("create time: first / last / median", _triple(times[0], times[-1], times)))

    session = localhost.session(verify=str(home / "gateway" / "tls" / "cert.pem"))
    port = int(env["MEDCELL_GATEWAY_PORT"])
    latencies, errors = [], 0
    for slug in slugs[:: max(1, count // WAKE_SAMPLE)][:WAKE_SAMPLE]:
        began = time.perf_counter()
        response = session.get(f"{facility_origin(slug, port=port)}healthz", timeout=30)
        latencies.append(time.perf_counter() - began)
        errors += response.status_code != 200
    rows.append(
        (
            f"wake to answer, first request, {len(latencies)} facilities",
            f"median {statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s, "
            f"p90 {percentile(latencies, 0.9):.2f} s, {errors} non-200",
        )
    )

    awake = [f"awake{i}" for i in range(AWAKE_SAMPLE)]
    for slug in awake:
        medcell(env, "facility", "create", slug, "--idle", "never")
    time.sleep(20)
    names = [f"{env['MEDCELL_DOCKER_PREFIX']}-{slug}" for slug in awake]
    before = {n: container_cpu_ns(client, n) for n in names}
    began = time.monotonic()
    time.sleep(CPU_WINDOW)
    elapsed = time.monotonic() - began
    cpu_ms = [(container_cpu_ns(client, n) - before[n]) / 1e6 / elapsed for n in names]
    memory = [container_memory(client, n) / MIB for n in names]
    rows.append(
        (
            f"awake idle facility, CPU ({AWAKE_SAMPLE} facilities, {CPU_WINDOW} s)",
            f"median {statistics.median(cpu_ms):.3f} ms/s, max {max(cpu_ms):.3f} ms/s",
        )
    )
    rows.append(
        (
            "awake idle facility, memory (docker stats)",
            f"median {statistics.median(memory):.1f} MiB, max {max(memory):.1f} MiB",
        )
    )
    for name in ("gateway", "supervisor"):
        container = f"{env['MEDCELL_DOCKER_PREFIX']}-{name}"
        memory_mib = container_memory(client, container) / MIB
        rows.append((f"{name} container memory", f"{memory_mib:.1f} MiB"))
    return rows


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s"


def _triple(first: float, last: float, values: list[float]) -> str:
    return f"{first:.2f} s / {last:.2f} s / {statistics.median(values):.2f} s"


def _counts(by_slug: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for status in by_slug.values():
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def main() -> None:
    sizes = [int(n) for n in os.environ.get("MEDCELL_BENCH_DENSITY", "300").split(",")]
    idle = os.environ.get("MEDCELL_BENCH_IDLE", "30s")
    parallel = int(os.environ.get("MEDCELL_BENCH_PARALLEL", "2"))
    client = docker.from_env()
    prefix = f"mcdense{secrets.token_hex(3)}"
    home = Path(tempfile.mkdtemp(prefix="medcell-density-"))
    env = {
        **os.environ,
        "MEDCELL_HOME": str(home / "home"),
        "MEDCELL_DOCKER_PREFIX": prefix,
        "MEDCELL_GATEWAY_PORT": str(free_port()),
        "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
        "MEDCELL_GATEWAY_BIND": "127.0.0.1",
    }
    try:
        rows = run(client, env, sizes, idle, parallel)
    finally:
        remove_installation(client, prefix)
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", flush=True)


if __name__ == "__main__":
    main()

"""Density figures: many facilities on one host, idle ones asleep, woken by their first request.

With N facilities provisioned (MEDCELL_BENCH_DENSITY, default 300; a list like `300,1000` measures
at each size on the way up) in a throw-away installation:
create time of the first and the last, `medcell facility list` time, host CPU and memory once the
idle ones sleep, wake-to-answer latency through the gateway, and CPU and memory of an awake idle
facility. Facilities are created with a short idle time (MEDCELL_BENCH_IDLE, default 30s) so they
fall asleep while the rest are made. MEDCELL_BENCH_DENSITY=0 measures only the awake facilities.

An awake facility's memory: `docker stats` after a day's mix of requests (login, list, 10 messages,
a 2400×1600 photo uploaded and downloaded), again after a PDF and a FHIR export of that
conversation, and the host memory it costs, which adds its containerd-shim (outside `docker
stats`). Then each is put to sleep and woken: its container's CPU from start to first answer.
Prints figures and the hosts of 24 GB that 3,500 awake facilities need; asserts nothing.
"""

from __future__ import annotations

import io
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
from devsupport.unix_http import UnixHTTPConnection
from medcell_common.origins import facility_origin

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
CPU_WINDOW = 60  # seconds of host CPU sampled once everything sleeps
AWAKE_SAMPLE = 5  # facilities kept awake (idle "never") to measure one awake idle facility
WAKE_SAMPLE = 20  # asleep facilities woken by a first request, one after another
PLAN_FACILITIES = 3500  # the seed's practices, nearly all awake in office hours
PLAN_HOST_GIB = 24
PLAN_RESERVED_GIB = 2  # the host's own: kernel, dockerd, containerd, gateway, supervisor


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


STAT_FIELDS = ("rss", "cache", "active_file", "inactive_file", "active_anon", "inactive_anon")


def memory_stat(client, name: str) -> dict[str, int]:
    """The container's cgroup memory.stat (cgroup v1 under cgroupfs, or v2), in bytes."""
    container_id = client.containers.get(name).id
    for path in (
        f"/sys/fs/cgroup/memory/docker/{container_id}/memory.stat",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat",
        f"/sys/fs/cgroup/docker/{container_id}/memory.stat",
    ):
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        values = {k: int(v) for k, v in (line.split() for line in lines)}
        values.setdefault("rss", values.get("anon", 0))
        values.setdefault("cache", values.get("file", 0))
        return values
    return {}


def data_files(client, name: str) -> list[Path]:
    """The facility's database files on the host (its /data volume)."""
    for mount in client.containers.get(name).attrs["Mounts"]:
        if mount["Destination"] == "/data":
            return [p for p in Path(mount["Source"]).glob("facility.db*") if p.is_file()]
    return []


def drop_page_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _stat_growth(before: list[dict], after: list[dict]) -> str:
    parts = []
    for field in STAT_FIELDS:
        pairs = zip(after, before, strict=True)
        grown = [(a.get(field, 0) - b.get(field, 0)) / MIB for a, b in pairs]
        parts.append(f"{field} {statistics.median(grown):+.1f}")
    return ", ".join(parts) + " (medians)"


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
    if count == 0:
        return rows + awake_figures(client, env)
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

    return rows + awake_figures(client, env)


def awake_figures(client, env: dict) -> list[tuple[str, str]]:
    """CPU and memory of awake idle facilities, before and after exports; CPU of one wake."""
    rows = Rows()
    awake = [f"awake{i}" for i in range(AWAKE_SAMPLE)]
    admins = {s: medcell(env, "facility", "create", s, "--idle", "never") for s in awake}
    time.sleep(20)
    names = [f"{env['MEDCELL_DOCKER_PREFIX']}-{slug}" for slug in awake]
    sockets = {s: Path(env["MEDCELL_HOME"]) / "run" / "facilities" / s / "app.sock" for s in awake}
    picture = _photo()
    conversations = {s: _day_mix(sockets[s], admins[s], picture) for s in awake}
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
    shims = [shim_memory(client, n) / MIB for n in names]
    host = [m + shim for m, shim in zip(memory, shims, strict=True)]
    rows.append(
        (
            "awake facility, host memory (docker stats + its containerd-shim)",
            f"median {statistics.median(host):.1f} MiB (shim {statistics.median(shims):.1f})",
        )
    )
    stat_before = [memory_stat(client, n) for n in names]
    for slug in awake:
        _exports(sockets[slug], *conversations[slug])
    time.sleep(5)
    exported = [container_memory(client, n) / MIB for n in names]
    grown = [after - before for after, before in zip(exported, memory, strict=True)]
    rows.append(
        (
            "awake facility after a PDF (with the photo) and a FHIR export",
            f"median {statistics.median(exported):.1f} MiB in docker stats "
            f"(+{statistics.median(grown):.1f}, max +{max(grown):.1f})",
        )
    )
    stat_after = [memory_stat(client, n) for n in names]
    rows.append(("  what grew (cgroup memory.stat, MiB)", _stat_growth(stat_before, stat_after)))
    # The page cache of the facility's own files, dropped from the host: what is left is not it.
    for name in names:
        drop_page_cache(data_files(client, name))
    dropped = [container_memory(client, n) / MIB for n in names]
    rows.append(
        (
            "  the same once the host drops its files' page cache",
            f"median {statistics.median(dropped):.1f} MiB in docker stats "
            f"(+{statistics.median(d - m for d, m in zip(dropped, memory, strict=True)):.1f} "
            "over before the exports)",
        )
    )
    wake_ms = []
    for slug, name in zip(awake, names, strict=True):
        medcell(env, "facility", "sleep", slug)
        medcell(env, "facility", "wake", slug)  # returns once the facility answers
        wake_ms.append(container_cpu_ns(client, name) / 1e6)
    rows.append(
        (
            f"wake: container CPU from start to first answer ({len(wake_ms)} wakes)",
            f"median {statistics.median(wake_ms):.0f} ms, max {max(wake_ms):.0f} ms",
        )
    )
    per_facility = statistics.median(host) * MIB
    usable = (PLAN_HOST_GIB - PLAN_RESERVED_GIB) * 1024 * MIB
    per_host = int(usable // per_facility)
    rows.append(
        (
            f"planning: {PLAN_FACILITIES:,} awake facilities",
            f"{per_host} per {PLAN_HOST_GIB} GB host ({PLAN_RESERVED_GIB} GiB kept for the host): "
            f"{-(-PLAN_FACILITIES // per_host)} hosts",
        )
    )
    for name in ("gateway", "supervisor"):
        container = f"{env['MEDCELL_DOCKER_PREFIX']}-{name}"
        memory_mib = container_memory(client, container) / MIB
        rows.append((f"{name} container memory", f"{memory_mib:.1f} MiB"))
    return rows


def shim_memory(client, name: str) -> int:
    """Proportional memory (PSS) of the containerd-shim that runs this container."""
    container_id = client.containers.get(name).id
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            command = (pid / "cmdline").read_bytes().split(b"\0")
            if (
                not command[0].endswith(b"containerd-shim-runc-v2")
                or container_id.encode() not in command
            ):
                continue
            for line in (pid / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            continue
    return 0


def _photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((2400, 1600), 60).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def _call(sock: Path, method: str, target: str, token: str = "", body=None, ctype="") -> bytes:
    """One request on the facility's own socket, as the gateway would forward it."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body, ctype = json.dumps(body).encode(), "application/json"
    if ctype:
        headers["Content-Type"] = ctype
    conn = UnixHTTPConnection(sock, timeout=60)
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {target.split('/')[3]}: {response.status}")
        return data
    finally:
        conn.close()


def _day_mix(sock: Path, admin: dict, picture: bytes) -> tuple[str, str]:
    """Login, a conversation with 10 messages, a photo up and down, the list: (token, conv id)."""
    login = {"username": admin["admin_user"], "password": admin["admin_password"]}
    token = json.loads(_call(sock, "POST", "/api/v1/login", body=login))["token"]
    conv = json.loads(_call(sock, "POST", "/api/v1/conversations", token, {"title": "Befund"}))
    base = f"/api/v1/conversations/{conv['id']}"
    for i in range(10):
        _call(sock, "POST", base + "/messages", token, {"body": f"Nachricht {i} " * 20})
    boundary = "medcellbench"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="foto.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + picture
        + f"\r\n--{boundary}--\r\n".encode()
    )
    att = json.loads(
        _call(
            sock,
            "POST",
            base + "/attachments",
            token,
            form,
            f"multipart/form-data; boundary={boundary}",
        )
    )
    _call(sock, "GET", f"/api/v1/attachments/{att['id']}", token)
    _call(sock, "GET", "/api/v1/conversations", token)
    _call(sock, "GET", base + "/messages", token)
    return token, conv["id"]


def _exports(sock: Path, token: str, conv_id: str) -> None:
    base = f"/api/v1/conversations/{conv_id}/export"
    _call(sock, "GET", base + "?format=pdf", token)
    _call(sock, "GET", base + "?format=fhir", token)


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
        "MEDCELL_METRICS_BIND": f"127.0.0.1:{free_port()}",
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

"""Gateway benchmark: what the HTTPS gateway costs compared with talking to a facility directly.

One private installation (own MEDCELL_HOME, ports and Docker name prefix) with one facility. The
same wrk client (16 keep-alive connections) alternates, in one run, between the gateway over TLS
and the facility container over plain HTTP (both at their container addresses), for a small
message GET and POST; then 20 MB attachments stream up and down while `docker stats` samples the
gateway's memory. Everything the run created is removed at the end.
"""

import functools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.common import ensure_wrk, free_port, median, wrk

CONNECTIONS = 16
SECONDS = 5
ROUNDS = 3
ATTACHMENT_ROUNDS = 10
MIB = 1024 * 1024
MESSAGE = json.dumps({"body": "x" * 300})


class Installation:
    """A throw-away medcell installation driven through the CLI, removed on exit."""

    def __init__(self, home: Path):
        self.prefix = f"mcbench{secrets.token_hex(3)}"
        self.port = free_port()
        self.env = {
            **os.environ,
            "MEDCELL_HOME": str(home),
            "MEDCELL_DOCKER_PREFIX": self.prefix,
            "MEDCELL_GATEWAY_PORT": str(self.port),
            "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
            "MEDCELL_GATEWAY_BIND": "127.0.0.1",
        }
        self.gateway = f"{self.prefix}-gateway"
        self.cert = str(home / "gateway" / "tls" / "cert.pem")

    def medcell(self, *args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", *args, "--json"],
            env=self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"Error: medcell {' '.join(args)} failed: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def container_ip(self, container: str, network: str) -> str:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return json.loads(out)[network]["IPAddress"]

    def remove(self, slugs: list[str]) -> None:
        for slug in slugs:
            subprocess.run(
                [sys.executable, "-m", "provisioner", "facility", "delete", slug, "--yes"],
                env=self.env, capture_output=True, timeout=300,
            )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "provisioner", "down"], env=self.env, capture_output=True
        )
        label = f"label=medcell.instance={self.prefix}"
        for kind, listing in (
            ("container", ["docker", "ps", "-aq", "--filter", label]),
            ("network", ["docker", "network", "ls", "-q", "--filter", label]),
            ("volume", ["docker", "volume", "ls", "-q", "--filter", label]),
        ):
            ids = subprocess.run(listing, capture_output=True, text=True).stdout.split()
            if ids:
                force = [] if kind == "network" else ["-f"]
                subprocess.run(["docker", kind, "rm", *force, *ids], capture_output=True)


def ssl_session(cafile: str) -> requests.Session:
    """A session verifying the installation's certificate; passed per request because this
    requests version ignores a CA file set as `Session.verify`."""
    session = requests.Session()
    session.request = functools.partial(session.request, verify=cafile)
    return session


def container_id(name: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True
    ).stdout.strip()


def container_memory(cid: str) -> int:
    """Memory use as `docker stats` computes it (usage minus inactive page cache), in bytes.

    Read from the container's cgroup, so it can be sampled every few milliseconds.
    """
    for usage_file, stat_file, inactive in (
        (f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes",
         f"/sys/fs/cgroup/memory/docker/{cid}/memory.stat", "total_inactive_file"),
        (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.current",
         f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.stat", "inactive_file"),
    ):  # fmt: skip
        if os.path.exists(usage_file):
            stat = dict(line.split() for line in Path(stat_file).read_text().splitlines())
            return int(Path(usage_file).read_text()) - int(stat.get(inactive, 0))
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", cid],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    usage = out.split("/")[0].strip()
    units = {"KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB, "kB": 1000, "MB": 10**6, "GB": 10**9}
    for unit, factor in units.items():
        if usage.endswith(unit):
            return int(float(usage[: -len(unit)]) * factor)
    return int(float(usage.rstrip("B")))


def container_cpu(cid: str) -> float | None:
    """CPU seconds a container has used so far, from its cgroup; None where it cannot be read."""
    for path, scale in (
        (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
        (f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
    ):
        if os.path.exists(path):
            return int(Path(path).read_text()) * scale
    stat = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
    if stat.exists():
        usage = dict(line.split() for line in stat.read_text().splitlines())
        return int(usage["usage_usec"]) * 1e-6
    return None


def prepare(inst: Installation, base: str) -> tuple[str, str, str]:
    """Log in; one conversation with one message to list, one to post into."""
    admin = inst.medcell("facility", "create", "bench")
    session = ssl_session(inst.cert)
    token = session.post(
        f"{base}/api/v1/login",
        json={"username": admin["admin_user"], "password": admin["admin_password"]},
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    listed = session.post(f"{base}/api/v1/conversations", json={}, headers=auth).json()["id"]
    session.post(f"{base}/api/v1/conversations/{listed}/messages", data=MESSAGE, headers=auth)
    posted = session.post(f"{base}/api/v1/conversations", json={}, headers=auth).json()["id"]
    return token, listed, posted


def throughput(inst: Installation, token: str, listed: str, posted: str) -> list[dict]:
    """Alternate direct and gateway runs of the same wrk load; one row per run."""
    facility = f"{inst.prefix}-bench"
    direct = f"http://{inst.container_ip(facility, facility)}:8000"
    # Both sides by container address: the published port on loopback would add Docker's
    # userland proxy to the gateway's side only (outside traffic reaches it by NAT instead).
    gateway = f"https://{inst.container_ip(inst.gateway, f'{inst.prefix}-edge')}:8443/f/bench"
    loads = {
        "GET": (f"/api/v1/conversations/{listed}/messages", None),
        "POST": (f"/api/v1/conversations/{posted}/messages", MESSAGE),
    }
    containers = (container_id(inst.gateway), container_id(f"{inst.prefix}-bench"))
    rows = []
    for round_ in range(ROUNDS):
        for method, (path, body) in loads.items():
            # Swap who goes first each round, so drift on a noisy machine hits both sides.
            order = [("direct", direct), ("gateway", gateway)]
            for via, origin in order if round_ % 2 == 0 else order[::-1]:
                before = [container_cpu(c) for c in containers]
                result = wrk(
                    origin + path, method=method, token=token, body=body,
                    connections=CONNECTIONS, seconds=SECONDS,
                )  # fmt: skip
                after = [container_cpu(c) for c in containers]
                served = max(result["rps"] * SECONDS, 1)
                # CPU per request is what the machine's other load distorts least.
                cpu_us = [
                    (a - b) / served * 1e6 if a is not None and b is not None else float("nan")
                    for a, b in zip(after, before, strict=True)
                ]
                rows.append({"round": round_ + 1, "method": method, "via": via, **result})
                print(
                    f"  round {round_ + 1} {method:4} {via:7} {result['rps']:8.0f} req/s"
                    f"  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                    f"  non-2xx {result['errors']}"
                    f"  CPU/request: gateway {cpu_us[0]:5.0f} us, facility {cpu_us[1]:5.0f} us",
                    flush=True,
                )
    return rows


def summarize(rows: list[dict]) -> None:
    print(
        f"\n  {'load':6} {'gateway/direct req/s':>22} {'added p99 (ms)':>16}   (medians of rounds)"
    )
    for method in ("GET", "POST"):
        ratios, added = [], []
        for round_ in range(1, ROUNDS + 1):
            pair = {r["via"]: r for r in rows if r["round"] == round_ and r["method"] == method}
            ratios.append(pair["gateway"]["rps"] / pair["direct"]["rps"])
            added.append(pair["gateway"]["p99_ms"] - pair["direct"]["p99_ms"])
        print(f"  {method:6} {median(ratios):21.0%} {median(added):16.2f}")
    print("  targets: throughput >= 70 %, added p99 <= 5 ms")


def attachment_memory(inst: Installation, token: str, base: str) -> None:
    """Gateway memory (docker stats) before and while 20 MB attachments go up and down."""
    session = ssl_session(inst.cert)
    auth = {"Authorization": f"Bearer {token}"}
    cid = session.post(f"{base}/api/v1/conversations", json={}, headers=auth).json()["id"]
    content = os.urandom(20 * 1000 * 1000)

    def round_trip():
        attached = session.post(
            f"{base}/api/v1/conversations/{cid}/attachments",
            files={"file": ("scan.bin", content, "application/octet-stream")},
            headers=auth,
        ).json()
        with session.get(
            f"{base}/api/v1/attachments/{attached['id']}", headers=auth, stream=True
        ) as download:
            for _ in download.iter_content(256 * 1024):
                pass

    gateway = container_id(inst.gateway)
    cold = container_memory(gateway)
    # The first streams grow each worker thread's buffers once; flat means flat after that.
    for _ in range(3):
        round_trip()
    time.sleep(2)
    baseline = container_memory(gateway)
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(container_memory(gateway))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    for _ in range(ATTACHMENT_ROUNDS):
        round_trip()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    time.sleep(1)
    after = container_memory(gateway)
    peak = max(samples)
    print(
        f"\n  20 MB attachments, {ATTACHMENT_ROUNDS} x up+down through the gateway in"
        f" {elapsed:.1f} s; gateway memory (docker stats' measure, {len(samples)} samples):"
        f"\n  before any attachment {cold / MIB:.1f} MiB; after 3 warm-up round trips"
        f" {baseline / MIB:.1f} MiB; peak {peak / MIB:.1f} MiB"
        f" ({(peak - baseline) / baseline:+.1%}; target within +-10 %), after {after / MIB:.1f} MiB"
    )
    session.delete(f"{base}/api/v1/conversations/{cid}", headers=auth)


def main() -> None:
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="medcell-bench-") as home:
        inst = Installation(Path(home))
        try:
            print("  setting up a private installation ...", flush=True)
            inst.medcell("up")
            base = f"https://127.0.0.1:{inst.port}/f/bench"
            token, listed, posted = prepare(inst, base)
            print(
                f"  {CONNECTIONS} keep-alive connections, {SECONDS} s per run, {ROUNDS} rounds;"
                " gateway over TLS vs facility container over plain HTTP",
                flush=True,
            )
            rows = throughput(inst, token, listed, posted)
            summarize(rows)
            attachment_memory(inst, token, base)
        finally:
            inst.remove(["bench"])


if __name__ == "__main__":
    main()

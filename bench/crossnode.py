"""Cluster mode through the lab (deploy/lab.sh): what a request to another node costs.

In a lab of its own (MEDCELL_BENCH_LAB, default `cbench`; brought up if it is not, taken down at
the end unless MEDCELL_BENCH_KEEP_LAB=1 or it was up already), makes two facilities that never
sleep, one on node1 ("local") and one on node3 ("remote"), and two more for wakes, likewise.

(a) Gateway: wrk runs inside node1 against node1's gateway, `GET /healthz` of the local and of the
remote facility in alternating rounds (MEDCELL_BENCH_CROSSNODE_ROUNDS, default 3, of 5 s), once
sequential (1 connection) and once with 16 keep-alive connections: requests/s, p50 and p99, and
the CPU per request of each node's gateway, read from its container's cgroup (cpuacct) and from
the nginx processes in it (/proc), before and after each round. Medians; ratio remote/local.

(b) Wakes: each round puts both wake facilities to sleep (`medcell facility sleep` on the node
that owns it; where that fails, their supervisor does after their idle time of 10 s: scale to 0)
and waits until nothing of them runs, then times a request through node1's gateway (made inside
node1, repeated until answered 200). MEDCELL_BENCH_CROSSNODE_WAKES rounds (default 4), local and
remote alternating which goes first. Median and worst. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import docker

from bench.common import table, wrk
from bench.density import wait_until
from bench.lab import LAB_SCRIPT, Lab

PREFIX = "medcell"  # the lab's installations use the default prefix
NODES = {"local": "node1", "remote": "node3"}
GATEWAY_PORT = 8443
ROUND_SECONDS = 5
MODES = (("sequential", 1, 1), ("16 connections", 16, 2))
WAKE_IDLE = "10s"  # the wake facilities' idle time: their supervisor puts them to sleep
ASLEEP_WAIT = 180  # seconds a wake facility may take to fall asleep

# Run inside node1: one request after another to a facility through the gateway until one is
# answered 200. Prints the seconds from the first request until that answer, the tries and the
# other statuses seen.
WAKE_PROBE = r"""
import json, socket, ssl, sys, time
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def ask():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n"
                            "Connection: close\r\n\r\n".encode())
                head = tls.recv(64).decode("latin-1")
        return int(head.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
began, seen = time.perf_counter(), []
while time.perf_counter() - began < 120:
    code = ask()
    if code == 200:
        break
    seen.append(code)
    time.sleep(0.05)
print(json.dumps({"seconds": time.perf_counter() - began, "answered": code == 200,
                  "before": seen}))
"""


def gateway_cpu(client: docker.DockerClient) -> tuple[float, float]:
    """(whole gateway container, its nginx processes) CPU seconds used so far on one node."""
    ticks = os.sysconf("SC_CLK_TCK")
    container_seconds, nginx = 0.0, 0
    for container in client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={PREFIX}-gateway"}
    ):
        pid = container.attrs["State"]["Pid"]
        line = next(
            entry
            for entry in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            if "cpuacct" in entry.split(":")[1].split(",")
        )
        group = Path("/sys/fs/cgroup/cpuacct") / line.split(":", 2)[2].lstrip("/")
        container_seconds += int((group / "cpuacct.usage").read_text()) / 1e9
        for member in (group / "cgroup.procs").read_text().split():
            try:
                if Path(f"/proc/{member}/comm").read_text().strip() != "nginx":
                    continue
                fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # it ended meanwhile
            nginx += int(fields[11]) + int(fields[12])  # utime, stime
    return container_seconds, nginx / ticks


def gateway_rounds(lab: Lab, slugs: dict[str, str], rounds: int) -> list[tuple]:
    engines = {node: lab.engine(node) for node in NODES.values()}
    runner = ("env", f"MEDCELL_LAB={lab.name}", "bash", str(LAB_SCRIPT), "exec", "node1", "--")
    rows = []
    for mode, connections, threads in MODES:
        results: dict[str, list[dict]] = {"local": [], "remote": []}
        for index in range(rounds):
            order = ("local", "remote") if index % 2 == 0 else ("remote", "local")
            for where in order:
                before = {n: gateway_cpu(c) for n, c in engines.items()}
                measured = wrk(
                    f"https://{slugs[where]}.localhost:{GATEWAY_PORT}/healthz",
                    connections=connections,
                    threads=threads,
                    seconds=ROUND_SECONDS,
                    timeout=10,
                    runner=runner,
                )
                after = {n: gateway_cpu(c) for n, c in engines.items()}
                done = max(measured["requests"], 1)
                for node in engines:
                    measured[f"{node} container"] = (after[node][0] - before[node][0]) / done
                    measured[f"{node} nginx"] = (after[node][1] - before[node][1]) / done
                results[where].append(measured)
        figures = {}
        for where, runs in results.items():
            med = {
                key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "output"
            }
            figures[where] = med
            rows.append(
                (
                    mode,
                    f"{where} ({NODES[where]})",
                    f"{med['rps']:.0f}",
                    f"{med['p50_ms']:.2f}",
                    f"{med['p99_ms']:.2f}",
                    f"{med['node1 nginx'] * 1e6:.0f} / {med['node1 container'] * 1e6:.0f}",
                    f"{med['node3 nginx'] * 1e6:.0f} / {med['node3 container'] * 1e6:.0f}",
                    f"{sum(r['errors'] + r['socket_errors'] for r in runs)}",
                )
            )
        local, remote = figures["local"], figures["remote"]

        def both(f: dict, part: str) -> float:
            return f[f"node1 {part}"] + f[f"node3 {part}"]

        rows.append(
            (
                mode,
                "ratio remote/local",
                f"{remote['rps'] / local['rps']:.2f}x",
                f"{remote['p50_ms'] / local['p50_ms']:.2f}x",
                f"{remote['p99_ms'] / local['p99_ms']:.2f}x",
                f"both nodes: nginx {both(remote, 'nginx') / max(both(local, 'nginx'), 1e-9):.2f}x,"
                f" container {both(remote, 'container') / both(local, 'container'):.2f}x",
                "",
                "",
            )
        )
    return rows


def asleep(lab: Lab, client: docker.DockerClient, slug: str) -> bool:
    service = client.services.get(f"{PREFIX}-{slug}")
    replicas = service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
    running = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    return replicas == 0 and not running


def put_to_sleep(lab: Lab, slug: str, node: str, notes: list[str]) -> None:
    """`medcell facility sleep` on the node that owns it; where that fails, the node's supervisor
    puts it to sleep after its idle time (WAKE_IDLE) by itself."""
    result = lab.run(node, "medcell", "facility", "sleep", slug, "--json")
    if result.returncode != 0:
        why = result.stderr.strip()[-200:]
        note = (
            f"`medcell facility sleep` on {node} failed ({why}); "
            f"waited for its supervisor's sleep after --idle {WAKE_IDLE}"
        )
        if note not in notes:
            notes.append(note)


def wake_rounds(lab: Lab, slugs: dict[str, str], rounds: int) -> tuple[list[tuple], list[str]]:
    manager = lab.engine("node1")
    notes: list[str] = []
    times: dict[str, list[float]] = {"local": [], "remote": []}
    failed: dict[str, int] = {"local": 0, "remote": 0}
    before: dict[str, list[int]] = {"local": [], "remote": []}
    for index in range(rounds):
        for where in ("local", "remote"):
            put_to_sleep(lab, slugs[where], NODES[where], notes)
        for where in ("local", "remote"):
            if not wait_until(
                lambda w=where: asleep(lab, manager, slugs[w]), ASLEEP_WAIT, pause=0.5
            ):
                notes.append(f"round {index + 1}: {where} not asleep within {ASLEEP_WAIT} s")
        time.sleep(2)  # the routes of the sleep settle on every gateway
        order = ("local", "remote") if index % 2 == 0 else ("remote", "local")
        for where in order:
            probe = lab.run(
                "node1",
                sys.executable,
                "-c",
                WAKE_PROBE,
                f"{slugs[where]}.localhost",
                str(GATEWAY_PORT),
                timeout=180,
            )
            answer = json.loads(probe.stdout)
            if answer["answered"]:
                times[where].append(answer["seconds"])
            else:
                failed[where] += 1
            before[where] += answer["before"]
    rows = []
    for where, seconds in times.items():
        codes = sorted(set(before[where]))
        rows.append(
            (
                f"{where} ({NODES[where]})",
                f"{len(seconds)}/{rounds}",
                f"{statistics.median(seconds):.2f}" if seconds else "-",
                f"{max(seconds):.2f}" if seconds else "-",
                f"{len(before[where])} ({', '.join(map(str, codes)) or 'none'})",
            )
        )
    if times["local"] and times["remote"]:
        rows.append(
            (
                "ratio remote/local",
                "",
                f"{statistics.median(times['remote']) / statistics.median(times['local']):.2f}x",
                f"{max(times['remote']) / max(times['local']):.2f}x",
                "",
            )
        )
    return rows, notes


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("Error: the cluster benchmark needs root (the lab: deploy/lab.sh)")
    lab = Lab(os.environ.get("MEDCELL_BENCH_LAB", "cbench"), os.environ.get("MEDCELL_LAB_DIR"))
    keep = os.environ.get("MEDCELL_BENCH_KEEP_LAB") == "1"
    rounds = int(os.environ.get("MEDCELL_BENCH_CROSSNODE_ROUNDS", "3"))
    wakes = int(os.environ.get("MEDCELL_BENCH_CROSSNODE_WAKES", "4"))
    was_up = lab.script("status", timeout=300).returncode == 0
    if not was_up:
        started = time.perf_counter()
        result = lab.script("up", timeout=900)
        if result.returncode != 0:
            raise SystemExit(f"Error: the lab did not come up: {result.stderr[-1500:]}")
        print(f"lab '{lab.name}' up in {time.perf_counter() - started:.0f} s", flush=True)
    made: list[str] = []
    try:
        serve = {"local": "bench-near", "remote": "bench-far"}
        sleepy = {"local": "bench-near-wake", "remote": "bench-far-wake"}
        for names, idle in ((serve, "never"), (sleepy, WAKE_IDLE)):
            for where, slug in names.items():
                lab.medcell(
                    "node1", "facility", "create", slug, "--node", NODES[where], "--idle", idle
                )
                made.append(slug)
        print(
            f"\n(a) node1's gateway, GET /healthz, wrk inside node1, {rounds} rounds of "
            f"{ROUND_SECONDS} s per target alternating, medians; CPU µs per request: nginx / "
            "whole gateway container",
            flush=True,
        )
        table(
            gateway_rounds(lab, serve, rounds),
            ("load", "facility", "req/s", "p50 ms", "p99 ms", "node1 µs", "node3 µs", "errors"),
        )
        print(
            f"\n(b) first request through node1's gateway to an asleep facility until answered "
            f"200, {wakes} rounds alternating (seconds)",
            flush=True,
        )
        rows, notes = wake_rounds(lab, sleepy, wakes)
        table(rows, ("facility", "answered", "median s", "worst s", "non-200 answers before"))
        for note in notes:
            print(f"note: {note}")
    finally:
        if keep or was_up:
            for slug in made:
                lab.run("node1", "medcell", "facility", "delete", slug, "--yes", timeout=300)
        else:
            lab.script("down", timeout=300)


if __name__ == "__main__":
    main()

"""A morning wake storm: N asleep facilities requested at once through the gateway.

In a throw-away installation (its own prefix, MEDCELL_HOME and ports), makes the largest of
MEDCELL_BENCH_WAKES (default `60,200`) facilities with a short idle time, and for each size waits
until that many sleep, then sends one `GET /healthz` to each of them at the same moment, from one
thread per facility. Reports how many were answered 200 (and how many 503 or otherwise), the
median, p90 and worst latency, the wall time until the last answer, and how long each wake took in
the supervisor. The per-client wake budget is switched off (MEDCELL_WAKE_BUDGET=0). The gateway
still holds at most MEDCELL_GATEWAY_ACTIVATOR_PER_CLIENT (32) requests of one client address for
sleeping facilities and answers the rest 429; on loopback every request reaches it through Docker's
userland proxy from one address, so beyond 32 facilities the rest are 429 here, while a real
opening storm comes from many clients. Prints figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

from bench.common import percentile
from bench.density import Rows, medcell, statuses, timed, wait_until
from devsupport import free_port, localhost, remove_installation
from medcell_common.origins import facility_origin

IDLE = "20s"  # made facilities fall asleep quickly by themselves
ASLEEP_TIMEOUT = 1200  # seconds to wait until a batch sleeps
REQUEST_TIMEOUT = 120


def storm(env: dict, slugs: list[str]) -> tuple[list[float], list, float]:
    """One request to each slug, all released at once: latencies, status codes (or the
    client's error), wall time."""
    port = int(env["MEDCELL_GATEWAY_PORT"])
    cert = str(Path(env["MEDCELL_HOME"]) / "gateway" / "tls" / "cert.pem")
    start = threading.Barrier(len(slugs) + 1)

    def one(slug: str) -> tuple[float, int | str]:
        session = localhost.session(verify=cert)  # the facility's own origin, as a browser
        url = f"{facility_origin(slug, port=port)}healthz"
        start.wait()
        began = time.perf_counter()
        try:
            code = session.get(url, timeout=REQUEST_TIMEOUT).status_code
        except requests.RequestException as e:
            code = type(e).__name__
        return time.perf_counter() - began, code

    with ThreadPoolExecutor(len(slugs)) as pool:
        futures = [pool.submit(one, slug) for slug in slugs]
        start.wait()
        began = time.perf_counter()
        results = [f.result() for f in futures]
        wall = time.perf_counter() - began
    return [r[0] for r in results], [r[1] for r in results], wall


def _others(codes: list) -> str:
    """What the answers other than 200 and 503 were: status codes, or the client's error."""
    counts: dict[str, int] = {}
    for code in codes:
        if code not in (200, 503):
            counts[str(code)] = counts.get(str(code), 0) + 1
    return f" ({', '.join(f'{n} × {c}' for c, n in sorted(counts.items()))})" if counts else ""


def wake_seconds(client, env: dict, since: int) -> list[float]:
    """How long each wake took in the supervisor since `since` (its `woke` log events)."""
    container = client.containers.get(f"{env['MEDCELL_DOCKER_PREFIX']}-supervisor")
    took = []
    for line in container.logs(stdout=False, stderr=True, since=since).decode().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "woke":
            took.append(float(record.get("seconds", 0)))
    return took


def run(client, env: dict, sizes: list[int]) -> list[tuple[str, str]]:
    rows = Rows()
    medcell(env, "up")
    slugs = [f"w{i:04d}" for i in range(max(sizes))]
    with ThreadPoolExecutor(2) as pool:
        times = list(
            pool.map(lambda s: timed(medcell, env, "facility", "create", s, "--idle", IDLE), slugs)
        )
    rows.append(
        (f"{len(slugs)} facilities created", f"median {statistics.median(times):.2f} s each")
    )
    overview = medcell(env, "status")
    rows.append(("awake cap (MEDCELL_MAX_AWAKE)", str(overview["max_awake"])))
    for size in sorted(sizes):
        batch = slugs[:size]
        asleep = wait_until(
            lambda b=batch: all(statuses(env).get(s) == "asleep" for s in b),
            timeout=ASLEEP_TIMEOUT,
            pause=3.0,
        )
        if not asleep:
            rows.append((f"[{size}] asleep before the storm", "timed out"))
            continue
        time.sleep(5)  # the last stops and route reloads settle
        since = int(time.time())
        latencies, codes, wall = storm(env, batch)
        answered = sum(c == 200 for c in codes)
        took = wake_seconds(client, env, since)
        rows.append(
            (
                f"[{size}] asleep facilities requested at once",
                f"{answered}/{size} answered 200, {codes.count(503)} 503, "
                f"{size - answered - codes.count(503)} other{_others(codes)}; "
                f"median {statistics.median(latencies):.2f} s, "
                f"p90 {percentile(latencies, 0.9):.2f} s, worst {max(latencies):.2f} s, "
                f"last answer after {wall:.2f} s",
            )
        )
        if took:
            rows.append(
                (
                    f"[{size}] each wake in the supervisor (start to answer, queue not counted)",
                    f"median {statistics.median(took):.2f} s, p90 {percentile(took, 0.9):.2f} s, "
                    f"worst {max(took):.2f} s ({len(took)} wakes)",
                )
            )
    return rows


def main() -> None:
    sizes = [int(n) for n in os.environ.get("MEDCELL_BENCH_WAKES", "60,200").split(",")]
    client = docker.from_env()
    prefix = f"mcwake{secrets.token_hex(3)}"
    home = Path(tempfile.mkdtemp(prefix="medcell-wakes-"))
    env = {
        **os.environ,
        "MEDCELL_HOME": str(home / "home"),
        "MEDCELL_DOCKER_PREFIX": prefix,
        "MEDCELL_GATEWAY_PORT": str(free_port()),
        "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
        "MEDCELL_GATEWAY_BIND": "127.0.0.1",
        "MEDCELL_WAKE_BUDGET": "0",
    }
    try:
        rows = run(client, env, sizes)
    finally:
        remove_installation(client, prefix)
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", flush=True)


if __name__ == "__main__":
    main()

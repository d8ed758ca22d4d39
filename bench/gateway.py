"""Gateway benchmark: what the nginx gateway costs compared with talking to a facility directly.

Host processes, not containers: the facility's server as its image starts it
(`python -m services`) listens on the unix socket the gateway routes to and, for the
direct side, on a loopback TCP port; the real `python -m gateway serve` (nginx from Debian, the
package the gateway image carries, with the rendered production configuration) serves TLS on
loopback in front of that socket, keeping idle connections to it open (the per-facility
`upstream` group with keepalive that gateway/nginx.py renders for a running facility). Both
sides reach the same facility process in the same run.
Containers would add nothing per request that matters here (namespaces and cgroups cost no
CPU per request) but would put Docker's userland proxy or NAT on one side only, and a
container's cgroup counts its Python control plane with nginx; here the nginx worker processes
are counted alone, from /proc/<pid>/stat.

1. Throughput: wrk (16 keep-alive connections) alternates, round by round with the order
   swapped each round, between direct (plain HTTP) and the gateway (TLS), on `GET /healthz`, a
   20-message list and a message POST. Medians of the rounds; nginx CPU per request from the
   workers' /proc/<pid>/stat, facility CPU per request from its gunicorn workers'.
2. Memory of the nginx processes while 20 MB attachments stream up and down.
(Many facilities under load at once: bench/load.py.)
Everything is started in a temporary directory and removed at the end; loopback only.
"""

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.common import cpu_seconds, ensure_nginx, ensure_wrk, median, memory, table, wrk
from bench.gateway_setup import Facility, Gateway
from devsupport import localhost

CONNECTIONS = 16
SECONDS = 5
ROUNDS = 5
ATTACHMENTS = 10
MIB = 1024 * 1024
MESSAGE = json.dumps({"body": "x" * 300})
VIAS = ("direct", "gateway")


def prepare(origin: str, admin: dict, cert: str | bool = False) -> tuple[str, str, str]:
    """Log in; a conversation holding 20 messages to list, and one to post into."""
    session = localhost.session(verify=cert)
    token = session.post(
        f"{origin}/api/v1/login",
        json={"username": admin["username"], "password": admin["password"]},
        verify=cert,
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conv = [
        session.post(f"{origin}/api/v1/conversations", json={}, headers=auth, verify=cert).json()[
            "id"
        ]
        for _ in range(2)
    ]
    for _ in range(20):
        url = f"{origin}/api/v1/conversations/{conv[0]}/messages"
        session.post(url, data=MESSAGE, headers=auth, verify=cert).raise_for_status()
    return token, conv[0], conv[1]


def admins(facilities: list[Facility]) -> list[dict]:
    pending = [f.create_admin() for f in facilities]
    return [json.loads(p.communicate(timeout=120)[0]) for p in pending]


def throughput(bench: Facility, gw: Gateway, token: str, listed: str, posted: str) -> list[dict]:
    origins = {"direct": bench.url, "gateway": gw.origin("bench")}
    nginx = {"direct": [], "gateway": gw.nginx()[1:]}
    loads = {
        "healthz": ("GET", "/healthz", None),
        "list": ("GET", f"/api/v1/conversations/{listed}/messages", None),
        "POST": ("POST", f"/api/v1/conversations/{posted}/messages", MESSAGE),
    }
    rows = []
    for round_ in range(ROUNDS):
        for load, (method, path, body) in loads.items():
            # Rotate who goes first, so the machine's drift hits every side alike.
            order = VIAS[round_ % len(VIAS) :] + VIAS[: round_ % len(VIAS)]
            for via in order:
                pids = nginx[via] + bench.workers()
                before = cpu_seconds(nginx[via]), cpu_seconds(bench.workers())
                r = wrk(origins[via] + path, method=method, token=token, body=body,
                        connections=CONNECTIONS, seconds=SECONDS)  # fmt: skip
                after = cpu_seconds(nginx[via]), cpu_seconds(bench.workers())
                assert pids == nginx[via] + bench.workers(), "processes changed during a run"
                done = max(r["requests"], 1)
                r.update(
                    round=round_ + 1, load=load, via=via,
                    gw_us=(after[0] - before[0]) / done * 1e6 if nginx[via] else None,
                    app_us=(after[1] - before[1]) / done * 1e6,
                    gw_cpu=after[0] - before[0],
                )  # fmt: skip
                rows.append(r)
                gw_cpu = f"{r['gw_us']:5.0f}" if r["gw_us"] is not None else "    -"
                print(
                    f"  round {round_ + 1} {load:7} {via:9} {r['rps']:7.0f} req/s"
                    f"  p50 {r['p50_ms']:6.2f}  p99 {r['p99_ms']:7.2f} ms"
                    f"  errors {r['errors'] + r['socket_errors']}"
                    f"  CPU/req: nginx {gw_cpu} us, facility {r['app_us']:5.0f} us",
                    flush=True,
                )
    return rows


def summarize(rows: list[dict]) -> None:
    out = []
    for load in ("healthz", "list", "POST"):
        for via in VIAS[1:]:
            ratios, added, cpu = [], [], []
            for round_ in range(1, ROUNDS + 1):
                pair = {r["via"]: r for r in rows if r["round"] == round_ and r["load"] == load}
                ratios.append(pair[via]["rps"] / pair["direct"]["rps"])
                added.append(pair[via]["p99_ms"] - pair["direct"]["p99_ms"])
                cpu.append(pair[via]["gw_us"])
            mine = [r for r in rows if r["load"] == load and r["via"] == via]
            direct = [r for r in rows if r["load"] == load and r["via"] == "direct"]
            total = sum(r["gw_cpu"] for r in mine) / sum(r["requests"] for r in mine) * 1e6
            out.append((
                load, via, f"{median([r['rps'] for r in direct]):,.0f}",
                f"{median([r['rps'] for r in mine]):,.0f}", f"{median(ratios):.2f}x",
                f"{median(added):+.2f}", f"{median(cpu):.0f} ({total:.0f})",
                f"{median([r['app_us'] for r in direct]):.0f} / "
                f"{median([r['app_us'] for r in mine]):.0f}",
                sum(r["errors"] + r["socket_errors"] for r in mine + direct),
            ))  # fmt: skip
    print(f"\n  medians of {ROUNDS} rounds; {CONNECTIONS} keep-alive connections, {SECONDS} s each")
    table(out, ("load", "via", "direct req/s", "via req/s", "via/direct", "added p99 ms",
                "nginx us/req (whole run)", "facility us/req direct/via", "errors"))  # fmt: skip
    print("  targets: via/direct >= 0.90x, added p99 <= 2 ms, nginx CPU <= 250 us per request")


def attachment_memory(gw: Gateway, token: str) -> None:
    """nginx's memory (master + workers) before, at peak and after 20 MB streams up and down."""
    base = gw.origin("bench")
    session = localhost.session(verify=gw.cert)
    auth = {"Authorization": f"Bearer {token}"}
    cid = session.post(f"{base}/api/v1/conversations", json={}, headers=auth, verify=gw.cert)
    cid = cid.json()["id"]
    content = b"\x5a" * (20 * 1000 * 1000)
    pids = gw.nginx()
    before = memory(pids)
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            samples.append(memory(pids))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started, failures = time.monotonic(), 0
    for _ in range(ATTACHMENTS):
        up = session.post(
            f"{base}/api/v1/conversations/{cid}/attachments", headers=auth, verify=gw.cert,
            files={"file": ("scan.bin", content, "application/octet-stream")},
        )  # fmt: skip
        if up.status_code != 201:
            failures += 1
            continue
        size = 0
        with session.get(f"{base}/api/v1/attachments/{up.json()['id']}", headers=auth,
                         verify=gw.cert, stream=True) as down:  # fmt: skip
            for chunk in down.iter_content(256 * 1024):
                size += len(chunk)
        failures += size != len(content)
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    time.sleep(1)
    after = memory(pids)
    peak = max(samples, key=lambda m: m["pss_mib"])
    peak_rss = max(m["rss_mib"] for m in samples)
    print(
        f"\n  {ATTACHMENTS} x 20 MB up + down through the gateway in {elapsed:.1f} s, failures"
        f" {failures}; nginx master + {len(pids) - 1} workers, {len(samples)} samples:\n"
        f"  PSS before {before['pss_mib']:.1f} MiB, peak {peak['pss_mib']:.1f} MiB"
        f" ({peak['pss_mib'] - before['pss_mib']:+.1f}), after {after['pss_mib']:.1f} MiB;"
        f" RSS before {before['rss_mib']:.1f}, peak {peak_rss:.1f},"
        f" after {after['rss_mib']:.1f} MiB"
    )


def main() -> None:
    nginx, _ = ensure_nginx(), ensure_wrk()
    # Short: unix socket paths are limited to 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="mcgw-"))
    gw = Gateway(base, nginx)
    bench = Facility(base, gw.run, "bench", tcp=True)
    try:
        print("  starting a facility app and the gateway ...", flush=True)
        (admin,) = admins([bench])
        bench.start()
        bench.wait()
        gw.route(["bench"])
        token, listed, posted = prepare(bench.url, admin)
        print(
            f"  nginx workers: {len(gw.nginx()) - 1}; direct = plain HTTP to the"
            " facility's TCP port; gateway = TLS to nginx, unix socket to the same facility",
            flush=True,
        )
        load_before = os.getloadavg()[0]
        rows = throughput(bench, gw, token, listed, posted)
        summarize(rows)
        # Other work on a shared machine shows up here; the ratios are what it distorts least.
        print(
            f"  machine load average (1 min): {load_before:.1f} before,"
            f" {os.getloadavg()[0]:.1f} after"
        )
        attachment_memory(gw, token)
    finally:
        gw.stop()
        bench.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

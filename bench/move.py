"""Move figures through the lab: `medcell facility move` of a facility holding
MEDCELL_BENCH_MOVE_MIB (default 100) MiB of attachments from node2 to node3, while node1 asks for
its `/healthz` through its gateway in a loop: downtime (first 503 to the first 200 after it) and
the move's total time.

Starts its own lab (`deploy/lab.sh`, MEDCELL_LAB=bench; only one lab runs on a machine, so run it
while no other lab is up) with the images of MEDCELL_IMAGE_TAG, and takes it down at the end.
MEDCELL_BENCH_RUNS (default 2) moves, back and forth.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.lab import LAB_SCRIPT, Lab

MIB = 1024 * 1024
FILE_MIB = 5
SLUG = "moving"
PROBE = (
    "while :; do s=$(curl -sk -o /dev/null -w '%{{http_code}}' --max-time 5 "
    "--resolve {slug}.localhost:8443:127.0.0.1 https://{slug}.localhost:8443/healthz); "
    'echo "$(date +%s.%N) $s"; done'
)


def curl(lab: Lab, node: str, *args: str) -> str:
    base = ["curl", "-sS", "-k", "--max-time", "300"]
    base += ["--resolve", f"{SLUG}.localhost:8443:127.0.0.1"]
    return lab.run(node, *base, *args, timeout=600, check=True).stdout


def fill(lab: Lab, admin: dict, total_mib: int, scratch: Path) -> None:
    url = f"https://{SLUG}.localhost:8443/api/v1"
    login = json.dumps({"username": admin["admin_user"], "password": admin["admin_password"]})
    deadline = time.monotonic() + 60
    while True:  # the gateways apply the new routes map a moment after `create` returns
        answer = json.loads(
            curl(
                lab, "node1", "-H", "Content-Type: application/json", "--data-binary", login,
                f"{url}/login",
            )
        )  # fmt: skip
        if "token" in answer or time.monotonic() > deadline:
            token = answer["token"]
            break
        time.sleep(0.5)
    auth = ["-H", f"Authorization: Bearer {token}"]
    conversation = json.loads(
        curl(
            lab,
            "node1",
            *auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            '{"title": "Bench"}',
            f"{url}/conversations",
        )
    )["id"]
    upload = scratch / "scan.pdf"
    for _ in range(max(1, total_mib // FILE_MIB)):
        head = b"%PDF-1.7\n"
        upload.write_bytes(head + os.urandom(FILE_MIB * MIB - len(head)))
        upload.chmod(0o644)
        curl(
            lab,
            "node1",
            *auth,
            "-F",
            f"file=@{upload}",
            f"{url}/conversations/{conversation}/attachments",
        )


def one_move(lab: Lab, to: str, scratch: Path) -> tuple[float, float]:
    """(downtime, total) of one move, in seconds."""
    log = scratch / f"probe-{to}.log"
    command = ["bash", str(LAB_SCRIPT), "exec", "node1", "--", "sh", "-c", PROBE.format(slug=SLUG)]
    with open(log, "w") as out:
        probe = subprocess.Popen(command, env=lab.env, stdout=out, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)  # the probe's first answers, before the move
        started = time.monotonic()
        lab.medcell("node1", "facility", "move", SLUG, "--to", to, timeout=600)
        total = time.monotonic() - started
        time.sleep(3)
    finally:
        probe.terminate()
        probe.wait(timeout=30)
    seen = [line.split() for line in log.read_text().splitlines() if len(line.split()) == 2]
    first_503 = next(float(t) for t, s in seen if s == "503")
    back = next(float(t) for t, s in seen if s == "200" and float(t) > first_503)
    return back - first_503, total


def main() -> None:
    total_mib = int(os.environ.get("MEDCELL_BENCH_MOVE_MIB", "100"))
    runs = int(os.environ.get("MEDCELL_BENCH_RUNS", "2"))
    lab = Lab()
    lab.script("down", check=True)
    lab.script("up", timeout=900, check=True)
    try:
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = Path(scratch_dir)
            scratch.chmod(0o755)
            admin = lab.medcell("node1", "facility", "create", SLUG, "--node", "node2", timeout=600)
            fill(lab, admin, total_mib, scratch)
            downtimes, totals = [], []
            for n in range(runs):
                downtime, total = one_move(lab, "node3" if n % 2 == 0 else "node2", scratch)
                downtimes.append(downtime)
                totals.append(total)
                print(f"move {n + 1}: downtime {downtime:.1f} s, total {total:.1f} s", flush=True)
    finally:
        lab.script("down", check=True)
    print(f"\nfacility with {total_mib} MiB of attachments, {runs} moves between lab nodes")
    print(f"{'':<28}{'median':>8}{'worst':>8}")
    for name, values in (("downtime (503 to 200), s", downtimes), ("move total, s", totals)):
        print(f"{name:<28}{statistics.median(values):>8.1f}{max(values):>8.1f}")

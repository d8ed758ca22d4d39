"""One facility, side by side: gunicorn (arbiter + threaded worker) against one waitress process.

Host processes with the image's Python and packages, each over fresh data on a loopback port,
started in turn (MEDCELL_BENCH_ROUNDS rounds, default 5; medians quoted). Per server:
CPU from start to the first answer (`/healthz`), anonymous memory of its processes (what differs
per facility: library pages are shared through the page cache) after a day's mix (login, list,
10 messages, a 2400×1600 photo uploaded and downloaded), after a 3 s burst of 8 threads reading
the messages (its requests/s quoted), and after a PDF and a FHIR export of that conversation.
Asserts nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devsupport import free_port

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")

GUNICORN = [sys.executable, "-m", "gunicorn", "-c"]
APP = "services.facility:create_app()"
# The image's malloc settings (deploy/facility.Dockerfile): one arena, large blocks mmapped.
TUNABLES = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072"}
# The baseline is the server the image ran before (bench/gunicorn_facility.py, without preload:
# a preloaded worker dirtied more than preloading saved); the image's is `python -m services`.
SERVERS = {
    "gunicorn (before)": ([*GUNICORN, "bench/gunicorn_facility.py", APP], {}),
    "gunicorn, malloc": ([*GUNICORN, "bench/gunicorn_facility.py", APP], TUNABLES),
    "waitress (the image's)": ([sys.executable, "-m", "services"], TUNABLES),
}


def tree(pid: int) -> list[int]:
    """The process and its descendants."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            todo += [int(c) for c in children]
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / TICKS


def anonymous_mib(pid: int) -> float:
    """Proportional anonymous memory (pages gunicorn's worker still shares with its arbiter count
    once, as in the container's cgroup and `docker stats`)."""
    total = 0
    for p in tree(pid):
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss_Anon:"):
                total += int(line.split()[1]) * 1024
    return total / MIB


def photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((2400, 1600), 60).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def one_run(name: str, command: list[str], extra: dict, work: Path, picture: bytes) -> dict:
    data = work / name.replace(" ", "").replace(",", "-")
    port = free_port()
    env = {
        **os.environ,
        "MEDCELL_FACILITY": "bench",
        "MEDCELL_DATA_DIR": str(data / "data"),
        "MEDCELL_KEY_DIR": str(data / "keys"),
        "MEDCELL_BIND": f"127.0.0.1:{port}",
        **extra,
    }
    admin = json.loads(
        subprocess.run(
            [sys.executable, "-m", "services.facility", "create-admin"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.trust_env = False
    began = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                if session.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.005)
        first_answer = time.perf_counter() - began
        wake_cpu = cpu_seconds(proc.pid)
        token = session.post(url + "/api/v1/login", json=admin).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        conv = session.post(url + "/api/v1/conversations", json={"title": "Befund"}).json()
        base = f"{url}/api/v1/conversations/{conv['id']}"
        for i in range(10):
            session.post(base + "/messages", json={"body": f"Nachricht {i} " * 20})
        session.get(url + "/api/v1/conversations")
        att = session.post(base + "/attachments", files={"file": ("foto.jpg", picture)}).json()
        session.get(f"{url}/api/v1/attachments/{att['id']}")
        session.get(base + "/messages")
        time.sleep(1)
        after_mix = anonymous_mib(proc.pid)
        throughput = _throughput(url, token, base + "/messages")
        time.sleep(1)
        after_burst = anonymous_mib(proc.pid)
        pdf = session.get(base + "/export?format=pdf")
        fhir = session.get(base + "/export?format=fhir")
        assert pdf.ok and fhir.ok, (pdf.status_code, fhir.status_code)
        time.sleep(1)
        after_exports = anonymous_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "wake_cpu": wake_cpu * 1000,
        "first_answer": first_answer * 1000,
        "after_mix": after_mix,
        "after_burst": after_burst,
        "after_exports": after_exports,
        "throughput": throughput,
    }


def _throughput(url: str, token: str, messages: str, seconds: float = 3.0) -> float:
    headers = {"Authorization": f"Bearer {token}"}

    def worker(_: int) -> int:
        s = requests.Session()
        s.trust_env = False
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            s.get(messages, headers=headers).raise_for_status()
            n += 1
        return n

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(worker, range(8))) / seconds


def main() -> None:
    rounds = int(os.environ.get("MEDCELL_BENCH_ROUNDS", "5"))
    work = Path(tempfile.mkdtemp(prefix="medcell-process-"))
    picture = photo()
    results: dict[str, list[dict]] = {name: [] for name in SERVERS}
    try:
        for _ in range(rounds):  # interleaved, so drifting load hits every server alike
            for name, (command, extra) in SERVERS.items():
                at = work / f"r{len(results[name])}"
                results[name].append(one_run(name, command, extra, at, picture))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'server (median of ' + str(rounds) + ')':<30} {'CPU to 1st answer':>18} "
        f"{'anon after mix':>15} {'after burst':>12} {'after exports':>14} {'list req/s':>11}"
    )
    for name, runs in results.items():

        def med(key: str, runs=runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(
            f"{name:<30} {med('wake_cpu'):>15.0f} ms {med('after_mix'):>11.1f} MiB "
            f"{med('after_burst'):>8.1f} MiB "
            f"{med('after_exports'):>10.1f} MiB {med('throughput'):>11.0f}"
        )


if __name__ == "__main__":
    main()

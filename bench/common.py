"""Helpers shared by the benchmarks: wrk runs, percentiles, process CPU and memory."""

import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devsupport import localhost


def ensure_wrk() -> str:
    """wrk from Debian's packages; installed on first use when running as root."""
    return _debian_tool("wrk", "wrk")


def ensure_nginx() -> str:
    """nginx from Debian's packages (the one the gateway image carries); installed, not started."""
    return _debian_tool("nginx", "nginx")


def _debian_tool(command: str, package: str) -> str:
    path = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin")
    if path:
        return path
    if os.geteuid() != 0:
        raise SystemExit(f"Error: the benchmarks need {command}: apt-get install -y {package}")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which(command, path="/usr/sbin:/usr/bin") or command


LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def wrk(
    url: str,
    *,
    method: str = "GET",
    token: str = "",
    body: str | None = None,
    connections: int = 8,
    seconds: int = 5,
    threads: int = 2,
    script: str | None = None,
    timeout: int = 2,
    runner: tuple[str, ...] = (),
) -> dict:
    """Run wrk against url (or a Lua script of its own); returns requests/s, the requests done,
    p50/p99 latency (ms), non-2xx/3xx answers ("errors"), socket errors and wrk's output.
    runner prefixes the command (e.g. to run wrk inside another network namespace)."""
    if script is None:
        script = LUA.format(
            method=method, token=token, body="nil" if body is None else f"[[{body}]]"
        )
    # wrk resolves with glibc, which knows no *.localhost: connect to loopback, name the facility
    # in Host (nginx routes by it; SNI only picks the certificate).
    parts = urlsplit(url)
    if parts.hostname and localhost.is_localhost(parts.hostname):
        script = f'wrk.headers["Host"] = "{parts.netloc}"\n' + script
        url = urlunsplit(parts._replace(netloc=f"{localhost.LOOPBACK}:{parts.port}"))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                *runner,
                ensure_wrk(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                f"--timeout={timeout}s",
                "--latency",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        Path(f.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rps": rps,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "errors": errors,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
        "output": out,
    }


def _latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def descendants(pid: int) -> list[int]:
    """A process and all its descendants, parents first."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children")
        try:
            kids = [int(p) for p in children.read_text().split()]
        except OSError:
            kids = []
        pids += kids
        frontier += kids
    return pids


def memory(pids: list[int]) -> dict:
    """RSS and PSS (MiB) summed over these processes."""
    rss = pss = 0
    for p in pids:
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {"processes": len(pids), "rss_mib": rss / 1024, "pss_mib": pss / 1024}


def tree_memory(pid: int) -> dict:
    """RSS and PSS (MiB) summed over a process and all its descendants."""
    return memory(descendants(pid))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used so far (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        # The command name (field 2) may hold spaces: count fields after its closing bracket.
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def table(rows: list[tuple], headers: tuple) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)))

"""A morning wake storm: N asleep facilities requested at once through the gateway, many clients.

In a throw-away installation (its own prefix, MEDCELL_HOME and ports) per image tag in
MEDCELL_BENCH_IMAGE_TAGS (default: MEDCELL_IMAGE_TAG's alone; two tags compare two builds side by
side), makes the largest of MEDCELL_BENCH_WAKES (default `60,200`) facilities with a short idle
time; for each size and each setting of the supervisor's wakes at once in
MEDCELL_BENCH_WAKES_AT_ONCE (default: the supervisor's own choice; e.g. `4,8`), taken in turn
with the installations in turn, for MEDCELL_BENCH_ROUNDS rounds (default 1), it waits until that
many sleep, then sends one `GET /healthz` to each of them at the same moment, one thread per
facility. A changed setting is applied by `medcell up` (which recreates the supervisor) before
the round.

The clients come from many addresses, as a real opening storm does: the gateway holds at most
MEDCELL_GATEWAY_ACTIVATOR_PER_CLIENT (32) requests of one client address for sleeping facilities,
and on loopback every request reaches it through Docker's userland proxy from one address. So the
benchmark adds a pair of virtual interfaces (veth, named after the installation) holding one
address of the benchmarking range 198.18.0.0/15 per request, binds each client to its own, and
connects straight to the gateway container's address on the installation's own edge network
(TLS with the facility's name for SNI and Host, the gateway's certificate checked). The pair is
removed again whatever happens. Where that cannot be made (no `ip`, not root), it says so and
falls back to the published port on loopback (one address: at most 32 held).

Per round it prints: answers by status, median, p90 and worst latency, the wall time until the
last answer, the supervisor's wakes at once (from its start event) and the most wakes seen under
way together (from its `woke` events), and where a wake's time went (each `woke` event's phases:
the engine's start, the facility's start until it answers, its first sweep; the rest of a
request's latency is the wait in the queue and the gateway). And where the CPU went during the
storm: the whole host (from /proc/stat, other developers' jobs included), dockerd and its
containerd, the woken containers' shims (with the runc processes they ran), the facility
containers themselves (their cgroups, made at each start), the supervisor, the gateway and the
benchmark's own clients; and whether the cores were saturated (host busy CPU / wall / cores).
The per-client wake budget is switched off (MEDCELL_WAKE_BUDGET=0). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from bench.common import percentile
from bench.density import Rows, medcell, statuses, timed, wait_until
from devsupport import free_port, remove_installation

IDLE = "20s"  # made facilities fall asleep quickly by themselves
ASLEEP_TIMEOUT = 1200  # seconds to wait until a batch sleeps
REQUEST_TIMEOUT = 120
GATEWAY_HTTPS = 8443  # inside the gateway container
CLIENT_RANGE = "198.18"  # RFC 2544's benchmarking range: never routed anywhere
TICKS = os.sysconf("SC_CLK_TCK")


class ClientAddresses:
    """A veth pair holding `count` client addresses, removed on exit whatever happened."""

    def __init__(self, prefix: str, count: int):
        self.link = f"{prefix[:12]}a"
        self.addresses = [f"{CLIENT_RANGE}.{i // 250}.{i % 250 + 1}" for i in range(count)]

    def __enter__(self) -> ClientAddresses:
        peer = self.link[:-1] + "b"
        subprocess.run(
            ["ip", "link", "add", self.link, "type", "veth", "peer", "name", peer],
            check=True,
            capture_output=True,
        )
        try:
            batch = "".join(f"address add {a}/32 dev {self.link}\n" for a in self.addresses)
            batch += f"link set {self.link} up\nlink set {peer} up\n"
            subprocess.run(
                ["ip", "-batch", "-"], input=batch, text=True, check=True, capture_output=True
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        # Deleting one end deletes the pair and every address on it.
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)


class Clients:
    """How the storm's requests reach the gateway: per-client addresses, else loopback."""

    def __init__(self, env: dict, client, addresses: ClientAddresses | None):
        self.port = int(env["MEDCELL_GATEWAY_PORT"])
        cert = str(Path(env["MEDCELL_HOME"]) / "gateway" / "tls" / "cert.pem")
        self.tls = ssl.create_default_context(cafile=cert)
        # The chain is checked; the name is not, as OpenSSL refuses `*.localhost` over a single
        # label (browsers and urllib3 accept it: devsupport/localhost.py).
        self.tls.check_hostname = False
        self.sources = addresses.addresses if addresses else []
        self.target = ("127.0.0.1", self.port)
        if self.sources:
            gateway = client.containers.get(f"{env['MEDCELL_DOCKER_PREFIX']}-gateway")
            networks = gateway.attrs["NetworkSettings"]["Networks"]
            address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
            self.target = (address, GATEWAY_HTTPS)

    def describe(self) -> str:
        if self.sources:
            return (
                f"{len(self.sources)} addresses of {CLIENT_RANGE}.0.0/15 on a veth pair, "
                "to the gateway container's address"
            )
        return "one address: the published port on loopback (at most 32 held per address)"

    def get(self, slug: str, index: int) -> int | str:
        """GET /healthz of the facility as a browser would (its name in SNI and Host)."""
        source = (self.sources[index % len(self.sources)], 0) if self.sources else None
        host = f"{slug}.localhost"
        try:
            raw = socket.create_connection(
                self.target, timeout=REQUEST_TIMEOUT, source_address=source
            )
            with self.tls.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(
                    f"GET /healthz HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
                    "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
                )
                head = b""
                while b"\r\n" not in head:
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    head += chunk
                parts = head.split(b" ", 2)
                if len(parts) >= 2 and parts[1].isdigit():
                    return int(parts[1])
                return "garbled"
        except OSError as e:
            return type(e).__name__

    def works(self, slug: str) -> bool:
        return self.get(slug, 0) == 200


def storm(clients: Clients, slugs: list[str]) -> tuple[list[float], list, float, float]:
    """One request to each slug, all released at once: latencies, status codes (or the
    client's error), wall time, the clients' own CPU seconds."""
    start = threading.Barrier(len(slugs) + 1)

    def one(index: int, slug: str) -> tuple[float, int | str]:
        start.wait()
        began = time.perf_counter()
        code = clients.get(slug, index)
        return time.perf_counter() - began, code

    with ThreadPoolExecutor(len(slugs)) as pool:
        futures = [pool.submit(one, i, slug) for i, slug in enumerate(slugs)]
        cpu = sum(os.times()[:2])
        start.wait()
        began = time.perf_counter()
        results = [f.result() for f in futures]
        wall = time.perf_counter() - began
        cpu = sum(os.times()[:2]) - cpu
    return [r[0] for r in results], [r[1] for r in results], wall, cpu


# CPU accounting


def _proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (and of its waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def _host_busy() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


def _engine_pids() -> tuple[int | None, int | None]:
    """This engine's dockerd (the one of /var/run/docker.pid) and the containerd it started."""
    try:
        dockerd = int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None, None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if name == "containerd" and ppid == dockerd:
            return dockerd, int(stat.parent.name)
    return dockerd, None


def _shim_cpu(container_ids: set[str]) -> float:
    """The shims of these containers, with the runc processes they ran and waited for."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if not args or b"containerd-shim" not in args[0]:
            continue
        if b"-id" in args:
            shim_id = args[args.index(b"-id") + 1].decode()
            if shim_id in container_ids:
                total += _proc_cpu(int(cmdline.parent.name), children=True)
    return total


def _cgroup_cpu(container_id: str) -> float:
    from bench.startup import cgroup_cpu_ns

    try:
        return cgroup_cpu_ns(container_id) / 1e9
    except (RuntimeError, OSError):
        return 0.0


class CpuMeter:
    """Where the CPU went between `start()` and `stop()`."""

    def __init__(self, client, prefix: str, facilities: list[str]):
        self.client, self.prefix, self.facilities = client, prefix, facilities
        self.dockerd, self.containerd = _engine_pids()

    def _ids(self, names: list[str]) -> dict[str, str]:
        ids = {}
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                ids[name] = self.client.containers.get(name).id
        return ids

    def _sample(self) -> dict[str, float]:
        own = self._ids([f"{self.prefix}-supervisor", f"{self.prefix}-gateway"])
        return {
            "host": _host_busy(),
            "dockerd": _proc_cpu(self.dockerd) if self.dockerd else 0.0,
            "containerd": _proc_cpu(self.containerd) if self.containerd else 0.0,
            "supervisor": _cgroup_cpu(own.get(f"{self.prefix}-supervisor", "")),
            "gateway": _cgroup_cpu(own.get(f"{self.prefix}-gateway", "")),
        }

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict[str, float]:
        after = self._sample()
        used = {k: after[k] - self.before[k] for k in after}
        # Woken containers' cgroups and shims are made at each start: all of it is this storm's.
        ids = set(self._ids([f"{self.prefix}-{slug}" for slug in self.facilities]).values())
        used["facilities"] = sum(_cgroup_cpu(i) for i in ids)
        used["shims"] = _shim_cpu(ids)
        return used


# the supervisor's log


def _events(client, env: dict, since: int, name: str) -> list[dict]:
    container = client.containers.get(f"{env['MEDCELL_DOCKER_PREFIX']}-supervisor")
    found = []
    for line in container.logs(stdout=False, stderr=True, since=since).decode().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == name:
            found.append(record)
    return found


def _stamp(record: dict) -> float:
    ts = str(record.get("ts", ""))
    try:
        whole, _, rest = ts.partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(rest[:3]) / 1000
    except ValueError:
        return 0.0


def most_at_once(woke: list[dict]) -> int:
    """The most wakes under way together, from each `woke` event's end and duration."""
    edges = []
    for record in woke:
        end = _stamp(record)
        edges += [(end - float(record.get("seconds", 0)), 1), (end, -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"median {statistics.median(values):.2f} s, p90 {percentile(values, 0.9):.2f} s, "
        f"worst {max(values):.2f} s"
    )


def _others(codes: list) -> str:
    counts: dict[str, int] = {}
    for code in codes:
        counts[str(code)] = counts.get(str(code), 0) + 1
    return ", ".join(f"{n} × {c}" for c, n in sorted(counts.items()))


def _apply_wakes_at_once(env: dict, value: str) -> None:
    """`medcell up` with the setting: a changed one recreates the supervisor."""
    if value:
        env["MEDCELL_WAKES_AT_ONCE"] = value
    else:
        env.pop("MEDCELL_WAKES_AT_ONCE", None)
    medcell(env, "up")


def round_rows(
    client, env: dict, clients: Clients, batch: list[str], label: str
) -> list[tuple[str, str]]:
    since = int(time.time()) - 1
    meter = CpuMeter(client, env["MEDCELL_DOCKER_PREFIX"], batch)
    meter.start()
    latencies, codes, wall, own_cpu = storm(clients, batch)
    used = meter.stop()
    used["bench clients"] = own_cpu
    woke = _events(client, env, since, "woke")
    started = _events(client, env, 1, "started")
    at_once = started[-1].get("wakes_at_once", "?") if started else "?"
    size = len(batch)
    rows = [
        (
            f"{label} answers",
            f"{_others(codes)}; median {statistics.median(latencies):.2f} s, "
            f"p90 {percentile(latencies, 0.9):.2f} s, worst {max(latencies):.2f} s "
            f"(last answer after {wall:.2f} s)",
        ),
        (
            f"{label} wakes at once",
            f"{at_once} set in the supervisor, at most {most_at_once(woke)} seen together "
            f"({len(woke)} wakes logged)",
        ),
    ]
    if woke:
        took = [float(r.get("seconds", 0)) for r in woke]
        rows.append((f"{label} each wake in the supervisor", _spread(took)))
        for phase, what in (
            ("start", "Docker start (engine call)"),
            ("answer", "facility start to first answer"),
            ("sweep", "first sweep confirmed"),
        ):
            values = [float(r[phase]) for r in woke if phase in r]
            if values:
                rows.append((f"{label}   of which {what}", _spread(values)))
        # The rest of each request: waiting in the queue (and the gateway's share).
        waited = sorted(latencies)
        mean_wake = statistics.mean(took)
        rows.append(
            (
                f"{label} waiting (latency − wake, approx.)",
                f"median {max(0.0, statistics.median(waited) - mean_wake):.2f} s, "
                f"worst {max(0.0, max(waited) - mean_wake):.2f} s",
            )
        )
    cores = os.cpu_count() or 1
    known = sum(v for k, v in used.items() if k != "host")
    parts = ", ".join(f"{k} {v:.2f}" for k, v in used.items() if k != "host")
    rows.append(
        (
            f"{label} CPU seconds during the storm",
            f"host {used['host']:.2f} in {wall:.2f} s on {cores} cores "
            f"({used['host'] / (wall * cores):.0%} busy); {parts}; "
            f"other processes {used['host'] - known:.2f}",
        )
    )
    rows.append(
        (
            f"{label} CPU per wake",
            f"{known / size * 1000:.0f} ms of ours "
            f"({used['facilities'] / size * 1000:.0f} facility, "
            f"{(used['dockerd'] + used['containerd'] + used['shims']) / size * 1000:.0f} engine "
            f"and shims, {used['supervisor'] / size * 1000:.0f} supervisor, "
            f"{used['gateway'] / size * 1000:.0f} gateway); "
            f"at {cores} cores a storm of {size} needs ≥ {known / cores:.2f} s",
        )
    )
    return rows


def _made(client, env: dict, slugs: list[str], addresses) -> tuple[Clients, list]:
    """`medcell up` and the facilities of one installation; its clients."""
    rows = []
    tag = env.get("MEDCELL_IMAGE_TAG", "latest")
    medcell(env, "up")
    with ThreadPoolExecutor(2) as pool:
        times = list(
            pool.map(lambda s: timed(medcell, env, "facility", "create", s, "--idle", IDLE), slugs)
        )
    rows.append(
        (f"[{tag}] {len(slugs)} facilities created", f"median {statistics.median(times):.2f} s")
    )
    rows.append(
        (f"[{tag}] awake cap (MEDCELL_MAX_AWAKE)", str(medcell(env, "status")["max_awake"]))
    )
    clients = Clients(env, client, addresses)
    if addresses is not None and not clients.works(slugs[0]):
        rows.append((f"[{tag}] client addresses", "not answered by the gateway: loopback"))
        clients = Clients(env, client, None)
    rows.append((f"[{tag}] clients", clients.describe()))
    return clients, rows


def run(client, envs: list[dict], sizes: list[int], settings: list[str], rounds: int) -> Rows:
    rows = Rows()
    slugs = [f"w{i:04d}" for i in range(max(sizes))]
    with contextlib.ExitStack() as stack:
        addresses = None
        try:
            addresses = stack.enter_context(
                ClientAddresses(envs[0]["MEDCELL_DOCKER_PREFIX"], max(sizes))
            )
        except (OSError, subprocess.CalledProcessError) as e:
            rows.append(("client addresses", f"could not be made ({type(e).__name__})"))
        installations = []
        for env in envs:
            clients, made = _made(client, env, slugs, addresses)
            rows.extend(made)
            installations.append((env, clients))
        load = os.getloadavg()
        rows.append(("load average before", f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"))
        for size in sorted(sizes):
            batch = slugs[:size]
            for number in range(rounds):
                for setting in settings:
                    for env, clients in installations:
                        _apply_wakes_at_once(env, setting)
                        asleep = wait_until(
                            lambda b=batch, e=env: all(statuses(e).get(s) == "asleep" for s in b),
                            timeout=ASLEEP_TIMEOUT,
                            pause=3.0,
                        )
                        tag = env.get("MEDCELL_IMAGE_TAG", "latest")
                        label = f"[{tag}, {size}, {setting or 'default'} at once, #{number + 1}]"
                        if not asleep:
                            rows.append((label, "timed out waiting for them to sleep"))
                            continue
                        time.sleep(5)  # the last stops and route reloads settle
                        load = os.getloadavg()[0]
                        found = round_rows(client, env, clients, batch, label)
                        found.append((f"{label} load average (1 min) before", f"{load:.2f}"))
                        rows.extend(found)
                        print("\n".join(f"{n}  {v}" for n, v in found), flush=True)
    return rows


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    sizes = [int(n) for n in os.environ.get("MEDCELL_BENCH_WAKES", "60,200").split(",")]
    settings = os.environ.get("MEDCELL_BENCH_WAKES_AT_ONCE", "").split(",")
    rounds = int(os.environ.get("MEDCELL_BENCH_ROUNDS", "1"))
    own_tag = os.environ.get("MEDCELL_IMAGE_TAG", "latest")
    tags = os.environ.get("MEDCELL_BENCH_IMAGE_TAGS", own_tag).split(",")
    client = docker.from_env()
    home = Path(tempfile.mkdtemp(prefix="medcell-wakes-"))
    envs = []
    for index, tag in enumerate(tags):
        env = {
            **os.environ,
            "MEDCELL_IMAGE_TAG": tag,
            "MEDCELL_HOME": str(home / f"home{index}"),
            "MEDCELL_DOCKER_PREFIX": f"mcwake{secrets.token_hex(3)}",
            "MEDCELL_GATEWAY_PORT": str(free_port()),
            "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
            "MEDCELL_METRICS_BIND": f"127.0.0.1:{free_port()}",
            "MEDCELL_GATEWAY_BIND": "127.0.0.1",
            "MEDCELL_WAKE_BUDGET": "0",
        }
        env.pop("MEDCELL_WAKES_AT_ONCE", None)
        envs.append(env)
    # A stop signal still removes what the benchmark made (the finally below runs).
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        rows = run(client, envs, sizes, settings, rounds)
    finally:
        for env in envs:
            remove_installation(client, env["MEDCELL_DOCKER_PREFIX"])
        shutil.rmtree(home, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", flush=True)


if __name__ == "__main__":
    main()

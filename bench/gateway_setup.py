"""Host processes for the gateway benchmark: facility apps under gunicorn and the real
`python -m gateway serve`."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.common import descendants
from devsupport import free_port

ROOT = Path(__file__).resolve().parents[1]


def _unix_get(path: str, target: str, timeout: float = 1.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(f"GET {target} HTTP/1.0\r\nHost: facility\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _wait(check, within: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + within
    while not check():
        if process is not None and process.poll() is not None:
            raise SystemExit(f"Error: {what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"Error: {what} within {within:.0f} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen | None, signum: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Facility:
    """The facility app under gunicorn with its production settings, on the socket the gateway
    routes to and, for the direct side of the comparison, also on a loopback TCP port."""

    def __init__(self, base: Path, run: Path, slug: str, tcp: bool = False):
        self.slug = slug
        self.root = base / "facilities" / slug
        self.socket = run / "facilities" / slug / "app.sock"
        self.port = free_port() if tcp else None
        self.url = f"http://127.0.0.1:{self.port}" if tcp else None
        self.env = {
            **os.environ,
            "MEDCELL_FACILITY": slug,
            "MEDCELL_DATA_DIR": str(self.root / "data"),
            "MEDCELL_KEY_DIR": str(self.root / "keys"),
            "MEDCELL_BIND": f"unix:{self.socket}",
        }
        self.process: subprocess.Popen | None = None

    def create_admin(self) -> subprocess.Popen:
        """Started, not awaited, so that many facilities hash their passwords side by side."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [sys.executable, "-m", "services.facility", "create-admin"],
            env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def start(self) -> None:
        # gunicorn takes --bind more than once; the command line overrides the config's bind.
        binds = [f"unix:{self.socket}"] + ([f"127.0.0.1:{self.port}"] if self.port else [])
        self.log = open(self.root / "server.log", "ab")
        flags = [arg for bind in binds for arg in ("--bind", bind)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn_facility.py", *flags,
             "services.facility:create_app()"],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log,
        )  # fmt: skip

    def healthy(self) -> bool:
        try:
            return _unix_get(str(self.socket), "/healthz").split(b"\r\n")[0].endswith(b" 200 OK")
        except OSError:
            return False

    def wait(self) -> None:
        _wait(self.healthy, 60, f"facility {self.slug} did not answer", self.process)

    def workers(self) -> list[int]:
        return descendants(self.process.pid)[1:]

    def stop(self) -> None:
        _stop(self.process)
        if self.process is not None:
            self.log.close()


class Gateway:
    """`python -m gateway serve` (nginx + activator) on loopback ports, own directories."""

    def __init__(self, base: Path, nginx: str):
        self.config, self.run, self.state = base / "cfg", base / "run", base / "state"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert = str(self.config / "tls" / "cert.pem")
        self.log_path = base / "gateway.log"
        self.env = {
            **os.environ,
            "MEDCELL_GATEWAY_CONFIG": str(self.config),
            "MEDCELL_GATEWAY_RUN_DIR": str(self.run),
            "MEDCELL_GATEWAY_STATE_DIR": str(self.state),
            "MEDCELL_GATEWAY_HTTPS_BIND": f"127.0.0.1:{self.port}",
            "MEDCELL_GATEWAY_HTTP_BIND": f"127.0.0.1:{free_port()}",
            "MEDCELL_GATEWAY_PORT": str(self.port),
            "MEDCELL_GATEWAY_NGINX": nginx,
            # Every benchmark client comes from 127.0.0.1: the per-address connection limit
            # (256) would refuse the 1,280 connections of the many-facility run.
            "MEDCELL_GATEWAY_CONN_PER_CLIENT": "0",
        }
        self.process: subprocess.Popen | None = None
        self.generation = 0
        tls = self.config / "tls"
        tls.mkdir(parents=True)
        (self.run / "facilities").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(tls / "key.pem"), "-out", self.cert, "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip

    def applied(self) -> int | None:
        try:
            return json.loads((self.run / "gateway" / "applied.json").read_text())["generation"]
        except (OSError, ValueError, KeyError):
            return None

    def route(self, slugs: list[str]) -> None:
        """Route these facilities as running and wait until nginx has loaded the table."""
        self.generation += 1
        document = {
            "version": 2,
            "generation": self.generation,
            "facilities": {slug: {"state": "running"} for slug in slugs},
        }
        tmp = self.config / "routes.json.tmp"
        tmp.write_text(json.dumps(document))
        os.replace(tmp, self.config / "routes.json")
        if self.process is None:
            self.log = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"],
                cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait(lambda: self.applied() == self.generation, 30, "routes not applied", self.process)

    def nginx(self) -> list[int]:
        """The nginx master and its workers (the master is a child of the control plane)."""
        for pid in descendants(self.process.pid)[1:]:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "nginx":
                return descendants(pid)
        raise SystemExit("Error: the gateway runs no nginx")

    def stop(self) -> None:
        _stop(self.process)
        if self.process is not None:
            self.log.close()

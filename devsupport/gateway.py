"""The real `python -m gateway serve` (nginx + activator) on loopback ports, with its own
directories and log file (gateway tests, gateway benchmark)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devsupport import localhost
from devsupport.waiting import free_port
from medcell_common.origins import facility_origin

ROOT = Path(__file__).resolve().parents[1]


def write_routes(path: Path, facilities: dict[str, str | dict], generation: int) -> None:
    """Replace routes.json atomically, as the provisioner does: {slug: state}, or {slug: entry}
    for an entry with more than its state (a remote one)."""
    entries = {
        slug: entry if isinstance(entry, dict) else {"state": entry}
        for slug, entry in facilities.items()
    }
    document = {"version": 2, "generation": generation, "facilities": entries}
    tmp = path.with_name("routes.json.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def make_tls_files(config_dir: Path) -> None:
    """A throwaway self-signed certificate, made the way an operator would with openssl."""
    tls = config_dir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"),
            "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1",
        ],
        check=True, capture_output=True,
    )  # fmt: skip


class GatewayServer:
    """`python -m gateway serve` with its config in `config` (default base/cfg), facility and
    supervisor sockets under `run` (default base/run), its log in base/gateway.log and its state
    in a short temporary directory of its own (unix socket paths are limited to 107 bytes),
    removed by `stop`. `env` adds to or overrides the gateway's environment."""

    def __init__(self, base: Path, config: Path | None = None, run: Path | None = None, **env: str):
        self.base = base
        self.config = config or base / "cfg"
        self.run = run or base / "run"
        self.state = Path(tempfile.mkdtemp(prefix="mcgw-"))
        self.port, self.http_port = free_port(), free_port()
        # By address: a host name the gateway does not serve (421, except its /healthz).
        self.url = f"https://127.0.0.1:{self.port}"
        # Its own name, where the old /f/<slug>/ addresses redirect from.
        self.home = f"https://localhost:{self.port}"
        # Reaches *.localhost; trusts the CA bundle of the environment (the tests set it).
        self.http = localhost.session()
        self.log_path = base / "gateway.log"
        self.env = {
            **os.environ,
            "MEDCELL_GATEWAY_CONFIG": str(self.config),
            "MEDCELL_GATEWAY_RUN_DIR": str(self.run),
            "MEDCELL_GATEWAY_STATE_DIR": str(self.state),
            "MEDCELL_GATEWAY_HTTPS_BIND": f"127.0.0.1:{self.port}",
            "MEDCELL_GATEWAY_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "MEDCELL_GATEWAY_PORT": str(self.port),
            **env,
        }
        self.process: subprocess.Popen | None = None

    @property
    def routes(self) -> Path:
        return self.config / "routes.json"

    @property
    def cert(self) -> str:
        return str(self.config / "tls" / "cert.pem")

    def origin(self, slug: str) -> str:
        """The facility's origin through this gateway, without the trailing slash (BASE)."""
        return facility_origin(slug, port=self.port).rstrip("/")

    def socket_of(self, slug: str) -> str:
        return str(self.run / "facilities" / slug / "app.sock")

    def make_tls_files(self) -> None:
        make_tls_files(self.config)

    def write_routes(self, facilities: dict[str, str | dict], generation: int) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        write_routes(self.routes, facilities, generation)

    def applied(self) -> int | None:
        """The routes generation nginx has loaded, from run/gateway/applied.json."""
        try:
            return json.loads((self.run / "gateway" / "applied.json").read_text())["generation"]
        except (OSError, ValueError, KeyError):
            return None

    def launch(self) -> None:
        self.log = open(self.log_path, "ab")
        # A process group of its own: `kill` takes nginx and the activator with it.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def _until(self, check, within: float, what: str) -> float:
        """Seconds until `check()`; AssertionError, with the end of the log, if the gateway exits
        first or `within` passes."""
        started = time.monotonic()
        while not check():
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() - started < within, f"{what} within {within:.0f} s"
            time.sleep(0.02)
        return time.monotonic() - started

    def wait_applied(self, generation: int, within: float = 10) -> float:
        """Wait until nginx has loaded routes generation `generation`; return how long it took."""
        return self._until(
            lambda: self.applied() == generation, within, f"generation {generation} not applied"
        )

    def wait_started(self, within: float = 10) -> float:
        """Wait until the gateway logs that it started: nginx, its workers and the activator run."""
        return self._until(
            lambda: any('"gateway_started"' in line for line in self.log_lines()),
            within,
            "gateway did not start",
        )

    def start(self, generation: int) -> "GatewayServer":
        """Launch it and wait until it has applied routes generation `generation`."""
        self.launch()
        self.wait_applied(generation)
        return self

    def kill(self) -> None:
        """SIGKILL the control plane, nginx and the activator at once, as a crashing container
        would be ended, and reap it; `stop` afterwards only cleans up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM it and wait (SIGKILL after 30 s); return its exit code. Safe to call twice."""
        shutil.rmtree(self.state, ignore_errors=True)
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self.log.close()
        return code

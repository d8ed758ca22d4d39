"""An app under gunicorn with its production config on a loopback port (tests, benchmarks)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from devsupport.waiting import free_port, wait_for_status

ROOT = Path(__file__).resolve().parents[1]


class Gunicorn:
    """`Gunicorn("deploy/gunicorn_facility.py", "services.facility:create_app()", env).start()`.

    The config reads its bind address from `bind_variable`, set to a free loopback port here.
    """

    def __init__(
        self,
        config: str,
        app: str,
        env: dict[str, str],
        log: Path,
        bind_variable: str = "MEDCELL_BIND",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "gunicorn", "-c", config, app]
        self.env = {**os.environ, **env, bind_variable: f"127.0.0.1:{self.port}"}
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    def start(self, health: str = "/healthz", timeout: float = 15) -> None:
        """Start it and wait until `health` answers 200; raise RuntimeError if it does not."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        if wait_for_status(self.url + health, 200, timeout) != 200:
            self.stop()
            raise RuntimeError(f"gunicorn did not serve {health}; see {self.log_path}")

    def stop(self) -> None:
        """Stop the whole process group (arbiter and workers) and wait for it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)

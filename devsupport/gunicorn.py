"""An app under gunicorn with its production config, on a loopback port and/or a unix socket."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devsupport.unix_http import unix_get
from devsupport.waiting import eventually, free_port, wait_for_status

ROOT = Path(__file__).resolve().parents[1]


class Gunicorn:
    """`Gunicorn("gateway/gunicorn_settings.py", APP, env, log)`.

    The config reads its bind address from `bind_variable`: a free loopback port (`url`), or the
    unix socket `socket` when one is given and `tcp` is false. With both, gunicorn is given one
    `--bind` for each (the command line overrides the config's bind).
    """

    def __init__(
        self,
        config: str,
        app: str,
        env: dict[str, str],
        log: Path,
        bind_variable: str = "MEDCELL_BIND",
        socket: Path | None = None,
        tcp: bool = True,
    ):
        self.socket = socket
        self.port = free_port() if tcp else None
        self.url = f"http://127.0.0.1:{self.port}" if tcp else None
        binds = [f"unix:{socket}"] if socket else []
        binds += [f"127.0.0.1:{self.port}"] if tcp else []
        flags = [arg for bind in binds for arg in ("--bind", bind)] if len(binds) > 1 else []
        self.command = [sys.executable, "-m", "gunicorn", "-c", config, *flags, app]
        self.env = {**os.environ, **env, bind_variable: binds[0]}
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    def launch(self) -> None:
        """Start it, not waiting (several can start side by side); its stderr goes to the log."""
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

    def healthy(self, health: str = "/healthz", on_socket: bool = False) -> bool:
        """Does `health` answer 200 (over TCP if it listens there, unless `on_socket`)?"""
        if self.url and not on_socket:
            return wait_for_status(self.url + health, 200, timeout=0) == 200
        try:
            return unix_get(self.socket, health, timeout=2)[0] == 200
        except OSError:
            return False

    def wait(
        self, ready: Callable[[], bool] | None = None, timeout: float = 15, what: str = "/healthz"
    ) -> None:
        """Wait until `ready()` (by default: /healthz answers 200); raise RuntimeError, with the
        end of the log, if the process exits first or `timeout` passes."""
        ready = ready or self.healthy
        done = eventually(lambda: ready() or self.proc.poll() is not None, bool, timeout)
        if not done or self.proc.poll() is not None:
            exited = self.proc.poll()
            self.stop()
            how = f"exited with {exited}" if exited is not None else f"within {timeout:.0f} s"
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server did not serve {what} ({how}); {self.log_path}:\n{tail}")

    def start(self, health: str = "/healthz", timeout: float = 15) -> None:
        """Start it and wait until `health` answers 200; raise RuntimeError if it does not."""
        self.launch()
        self.wait(lambda: self.healthy(health), timeout, health)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or a power cut would, and reap it."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Stop the whole process group (arbiter and workers) and wait for it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)

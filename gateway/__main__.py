"""`python -m gateway serve`: nginx (the data plane) and the activator as children, routes followed.

This process renders nginx's configuration, starts the nginx master (`daemon off`) and the
activator (gunicorn), then watches routes.json: a changed table is rendered, tested and loaded
with SIGHUP (no connection is dropped), and once the workers report its generation the gateway
acknowledges it in applied.json. Stop signals are passed on; the gateway exits with nginx.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from medcell_common.files import write_atomic
from medcell_common.interfaces import GATEWAY_REQUESTS_FILE

from . import eventlog
from .errorlog import ErrorLogReceiver
from .errors import GatewayError
from .nginx import Nginx
from .requestcount import RequestCounter
from .routes import EMPTY, RoutesFile, RouteTable
from .settings import (
    activator_socket,
    applied_file,
    cluster_tls_files,
    routes_file,
    settings_from_env,
    tls_files,
)

# The folder that holds the gateway package (a checkout or site-packages), so gunicorn imports it.
ROOT = Path(__file__).resolve().parent.parent
ACTIVATOR_SETTINGS = "gateway.gunicorn_settings"
# What each stop or reload signal becomes for nginx: SIGTERM there would cut connections.
NGINX_SIGNALS = {
    signal.SIGTERM: signal.SIGQUIT,
    signal.SIGINT: signal.SIGQUIT,
    signal.SIGQUIT: signal.SIGQUIT,
    signal.SIGHUP: signal.SIGHUP,
}
# At most one reload this often: each costs nginx a test run and new workers (~50 ms of CPU
# measured), and in a wake storm every woken facility changes the table; changes that come
# meanwhile are applied together. A sleep waits for its route at most this much longer.
RELOAD_GAP = 1.0


def activator_command() -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        f"python:{ACTIVATOR_SETTINGS}",
        "--chdir",
        str(ROOT),
    ]


def write_applied(path: str, generation: int) -> None:
    """Atomically, so a reader never sees half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, json.dumps({"generation": generation}))


class ControlPlane:
    def __init__(self, settings: dict):
        self.settings = settings
        self.nginx = Nginx(settings)
        self.routes = RoutesFile(routes_file(settings))
        self.activator: subprocess.Popen | None = None
        self.stopping = False

    def start(self) -> None:
        for path in (*tls_files(self.settings), *(cluster_tls_files(self.settings) or ())):
            if not os.path.isfile(path):
                raise GatewayError(f"TLS file missing: {path}")
        state = Path(self.settings["STATE_DIR"])
        state.mkdir(parents=True, exist_ok=True)
        self.errorlog = ErrorLogReceiver(str(state / "errorlog.sock")).start()
        snapshot = os.path.join(self.settings["RUN_DIR"], "gateway", GATEWAY_REQUESTS_FILE)
        self.requests = RequestCounter(str(state / "requests.sock"), snapshot).start()
        table = self.routes.poll() or EMPTY
        self.nginx.render(table)
        self.start_activator()
        self.nginx.start()
        # Sleeping facilities' requests need the activator: ready before anything is confirmed.
        if not self.wait_activator(timeout=20):
            eventlog.event("activator_not_ready", "error")
        self.acknowledge(table)

    def wait_activator(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.activator.poll() is None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(activator_socket(self.settings))
                    return True
                except OSError:
                    time.sleep(0.05)
        return False

    def start_activator(self) -> None:
        env = {**os.environ, "MEDCELL_GATEWAY_STATE_DIR": self.settings["STATE_DIR"]}
        self.activator = subprocess.Popen(activator_command(), env=env)

    def acknowledge(self, table: RouteTable) -> None:
        if not self.nginx.wait_generation(table.generation):
            eventlog.event("routes_not_confirmed", "error", generation=table.generation)
            return
        try:
            write_applied(applied_file(self.settings), table.generation)
        except OSError as e:
            eventlog.event("applied_unwritable", "error", error=type(e).__name__)
        eventlog.event(
            "routes_applied", generation=table.generation, facilities=len(table.facilities)
        )

    def forward(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGHUP:
            self.stopping = True
            if self.activator and self.activator.poll() is None:
                self.activator.send_signal(signal.SIGTERM)
        self.nginx.signal(NGINX_SIGNALS[signum])

    def run(self) -> int:
        nginx = self.nginx.process
        next_reload = 0.0
        while nginx.poll() is None:
            time.sleep(self.settings["ROUTES_REFRESH"])
            if self.stopping:
                continue
            if self.activator.poll() is not None:
                eventlog.event("activator_restarted", "error", exit_code=self.activator.returncode)
                self.start_activator()
            if time.monotonic() < next_reload:
                continue
            table = self.routes.poll()
            if table is None:
                continue
            next_reload = time.monotonic() + RELOAD_GAP
            try:
                self.nginx.apply(table)
            except GatewayError:
                eventlog.event("routes_rejected", "error", generation=table.generation)
                continue
            self.acknowledge(table)
        return nginx.returncode

    def stop(self) -> None:
        if self.activator and self.activator.poll() is None:
            self.activator.send_signal(signal.SIGTERM)
            try:
                self.activator.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.activator.kill()
        self.errorlog.close()
        self.requests.close()


def serve(environ: dict | None = None) -> int:
    """Run the gateway until nginx exits; return nginx's exit code."""
    eventlog.configure()
    settings = settings_from_env(os.environ if environ is None else environ)
    plane = ControlPlane(settings)
    for signum in NGINX_SIGNALS:
        signal.signal(signum, plane.forward)
    plane.start()
    eventlog.event("gateway_started")
    try:
        code = plane.run()
    finally:
        plane.stop()
    eventlog.event("gateway_stopped", exit_code=code)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run nginx (HTTPS 8443, redirects 8080) and the activator")
    parser.parse_args(argv)
    try:
        return serve()
    except GatewayError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

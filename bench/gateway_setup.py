"""Host processes for the gateway benchmark: facilities' servers (`python -m services`) and the
real `python -m gateway serve`."""

import subprocess
import sys
from pathlib import Path

from bench.common import descendants
from devsupport import FacilityServer, GatewayServer

ROOT = Path(__file__).resolve().parents[1]


class Facility(FacilityServer):
    """A facility's server as its image starts it, on the socket the gateway routes to and, for
    the direct side of the comparison, also on a loopback TCP port."""

    def __init__(self, base: Path, run: Path, slug: str, tcp: bool = False):
        socket = run / "facilities" / slug / "app.sock"
        super().__init__(base / "facilities" / slug, slug, socket=socket, tcp=tcp)

    def create_admin(self) -> subprocess.Popen:
        """Started, not awaited, so that many facilities hash their passwords side by side."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [sys.executable, "-m", "services.facility", "create-admin"],
            env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def start(self) -> None:
        """Started, not awaited (see `wait`), so that many facilities start side by side."""
        self.launch()

    def wait(self) -> None:
        """Until it answers /healthz on its socket (over which the gateway reaches it)."""
        try:
            super().wait(lambda: self.healthy(on_socket=True), timeout=60)
        except RuntimeError as e:
            raise SystemExit(f"Error: facility {self.slug} did not answer: {e}") from None

    def workers(self) -> list[int]:
        """The processes that serve it: one."""
        return descendants(self.proc.pid)


class Gateway(GatewayServer):
    """`python -m gateway serve` (nginx + activator) on loopback ports, own directories, with
    the benchmark's nginx and a throwaway certificate."""

    def __init__(self, base: Path, nginx: str):
        super().__init__(
            base,
            MEDCELL_GATEWAY_NGINX=nginx,
            # Every benchmark client comes from 127.0.0.1: the per-address connection limit
            # (256) would refuse the 1,280 connections of the many-facility run.
            MEDCELL_GATEWAY_CONN_PER_CLIENT="0",
        )
        self.generation = 0
        self.make_tls_files()
        (self.run / "facilities").mkdir(parents=True, exist_ok=True)

    def route(self, slugs: list[str]) -> None:
        """Route these facilities as running and wait until nginx has loaded the table."""
        self.generation += 1
        self.write_routes({slug: "running" for slug in slugs}, self.generation)
        if self.process is None:
            self.launch()
        try:
            self.wait_applied(self.generation, within=30)
        except AssertionError as e:
            raise SystemExit(f"Error: routes not applied: {e}") from None

    def nginx(self) -> list[int]:
        """The nginx master and its workers (the master is a child of the control plane)."""
        for pid in descendants(self.process.pid)[1:]:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "nginx":
                return descendants(pid)
        raise SystemExit("Error: the gateway runs no nginx")

"""Where the browser tests find a facility: through the real gateway, or a local facility server.

Either way a Site gives the facility's base URL, its admin login and a raw scan of its data
files, so that a test can check that deleted content has left no byte behind.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import urllib3

from devsupport import FacilityServer, Installation, localhost, wait_for_status
from medcell_common.origins import facility_origin
from provisioner.host import facility_http
from provisioner.host.config import Config

# The gateway's certificate is self-signed for this throw-away installation; the browser is told
# the same (ignore_https_errors). Traffic stays on loopback.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

ROOT = Path(__file__).resolve().parents[2]
SCAN = """
import os, sys
needles = [n.encode() for n in sys.argv[1:]]
for name in sorted(os.listdir("/data")):
    path = os.path.join("/data", name)
    if os.path.isfile(path):
        data = open(path, "rb").read()
        for n in needles:
            if n in data:
                print(name, n.decode())
"""


@dataclass
class Site:
    base: str  # e.g. https://web.localhost:18443 (its own origin) or http://127.0.0.1:18000
    admin_user: str
    admin_password: str
    scan: Callable[[list[str]], list[str]]  # needles found in the facility's data files
    # Requests the facility counts as activity (its /_medcell/status, asked as the supervisor
    # does): what keeps it awake.
    activity: Callable[[], int]
    name: str = ""
    # The facility's configured origin, which its links start with (MEDCELL_PUBLIC_URL); the
    # gateway site is reached there, the local one at `base`.
    public_url: str = ""

    def reach(self, link: str) -> str:
        """Where the browser opens a link the facility built: on this site, the same path."""
        origin = (self.public_url or self.base).rstrip("/")
        assert link.startswith(f"{origin}/"), f"{link} is not at {origin}"
        return self.base + link.removeprefix(origin)

    def api_login(self) -> dict:
        response = localhost.post(
            f"{self.base}/api/v1/login",
            json={"username": self.admin_user, "password": self.admin_password},
            verify=False,
            timeout=30,
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['token']}"}


# -- through the gateway ------------------------------------------------------------------


def gateway_site(shared: Installation):
    """One facility of its own in the tests' shared installation (Docker, gateway over TLS)."""
    with shared.own_facilities() as installation:
        created = installation.create("web", "--name", "Praxis am Park")
        base = f"{installation.origin('web')}"
        if wait_for_status(f"{base}/healthz", 200, 60, verify=False) != 200:
            raise RuntimeError(f"{base}/healthz did not answer within 60s")
        container = installation.docker.containers.get(installation.container("web"))

        def scan(needles: list[str]) -> list[str]:
            result = container.exec_run(["python3", "-c", SCAN, *needles])
            assert result.exit_code == 0, result.output
            return result.output.decode().split()

        config = Config.from_env(installation.env)

        def activity() -> int:
            return facility_http.status(config, "web").requests

        yield Site(base, created["admin_user"], created["admin_password"], scan, activity)


# -- on this host -------------------------------------------------------------------------


def local_site(root: Path):
    """The facility's server alone on loopback: quick, and no Docker needed."""
    server = FacilityServer(root, "web", MEDCELL_FACILITY_NAME="Praxis am Park")
    data = server.data
    login = server.create_admin()
    try:
        server.start(timeout=60)
        base = server.url

        def scan(needles: list[str]) -> list[str]:
            hits = []
            for path in sorted(data.iterdir()):
                if path.is_file():
                    content = path.read_bytes()
                    hits += [f"{path.name} {n}" for n in needles if n.encode() in content]
            return hits

        def activity() -> int:
            # Straight to the app, with no proxy in between: it answers its status then.
            return localhost.get(f"{base}/_medcell/status", timeout=5).json()["requests"]

        # Its links carry the development origin (no MEDCELL_PUBLIC_URL given): `reach` maps them.
        yield Site(
            base, login["username"], login["password"], scan, activity,
            public_url=facility_origin("web"),
        )  # fmt: skip
    finally:
        server.stop()

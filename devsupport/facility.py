"""A facility's server, started as its image starts it (`python -OO -m services`), and its admin."""

import json
import subprocess
import sys
from pathlib import Path

from devsupport.gunicorn import Gunicorn

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-OO", "-m", "services"]  # as deploy/facility.Dockerfile


class FacilityServer(Gunicorn):
    """`FacilityServer(root, "praxis")`: data/, keys/ and server.log under `root`.

    It listens on a free loopback port (`url`) and/or on the unix socket `socket` (whose folder is
    made), given to the server in MEDCELL_BIND; starting, waiting and stopping are `Gunicorn`'s
    (the handle works for any server process). The command is the image's own
    (services/__main__.py), so tests and benchmarks run the very server a facility container
    runs. Further MEDCELL_* settings are keyword arguments.
    """

    def __init__(
        self,
        root: Path,
        slug: str,
        *,
        socket: Path | None = None,
        tcp: bool = True,
        log: Path | None = None,
        **settings: str,
    ):
        self.root, self.slug = root, slug
        self.data = root / "data"
        env = {
            "MEDCELL_FACILITY": slug,
            "MEDCELL_DATA_DIR": str(self.data),
            "MEDCELL_KEY_DIR": str(root / "keys"),
            **settings,
        }
        root.mkdir(parents=True, exist_ok=True)
        if socket:
            socket.parent.mkdir(parents=True, exist_ok=True)
        super().__init__("", "", env, log or root / "server.log", socket=socket, tcp=tcp)
        self.command = list(SERVER)
        binds = [f"unix:{socket}"] if socket else []
        self.env["MEDCELL_BIND"] = " ".join(binds + ([f"127.0.0.1:{self.port}"] if tcp else []))
        self.admin: dict = {}

    def create_admin(self, timeout: float = 60) -> dict:
        """The first admin, made by the management command as the provisioner makes it; its
        login ({"username", "password"}) is kept as `admin` and returned."""
        made = subprocess.run(
            [sys.executable, "-m", "services.facility", "create-admin"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
        self.admin = json.loads(made.stdout)
        return self.admin

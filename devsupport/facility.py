"""The facility app under gunicorn as its image runs it, with its first admin."""

import json
import subprocess
import sys
from pathlib import Path

from devsupport.gunicorn import Gunicorn

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "deploy/gunicorn_facility.py"
APP = "services.facility:create_app()"


class FacilityServer(Gunicorn):
    """`FacilityServer(root, "praxis")`: data/, keys/ and server.log under `root`.

    It listens on a free loopback port (`url`) and/or on the unix socket `socket` (whose folder is
    made), like `Gunicorn`; `as_image` starts it as its image does (`python -m services`), which
    tunes gunicorn the same way. Further MEDCELL_* settings are keyword arguments.
    """

    def __init__(
        self,
        root: Path,
        slug: str,
        *,
        socket: Path | None = None,
        tcp: bool = True,
        as_image: bool = False,
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
        super().__init__(CONFIG, APP, env, log or root / "server.log", socket=socket, tcp=tcp)
        if as_image:
            self.command = [sys.executable, "-m", "services"]
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

"""Where the browser tests find a facility: through the real gateway, or a local gunicorn.

Either way a Site gives the facility's base URL, its admin login and a raw scan of its data
files, so that a test can check that deleted content has left no byte behind.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from tests.docker_objects import remove_installation

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
    base: str  # e.g. https://127.0.0.1:18443/f/web
    admin_user: str
    admin_password: str
    scan: Callable[[list[str]], list[str]]  # needles found in the facility's data files
    name: str = ""

    def api_login(self) -> dict:
        response = requests.post(
            f"{self.base}/api/v1/login",
            json={"username": self.admin_user, "password": self.admin_password},
            verify=False,
            timeout=30,
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['token']}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, verify=False, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# -- through the gateway ------------------------------------------------------------------


def medcell(env: dict, *args: str) -> dict | list | None:
    """Run the medcell CLI as an operator would; parse its --json answer."""
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *args, "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"medcell {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout) if result.stdout.strip() else None


def gateway_site(home: Path):
    """A throw-away installation (own Docker prefix, home and ports) with one facility."""
    import docker

    prefix = f"mcweb{secrets.token_hex(3)}"
    port = free_port()
    env = {
        **os.environ,
        "MEDCELL_HOME": str(home),
        "MEDCELL_DOCKER_PREFIX": prefix,
        "MEDCELL_GATEWAY_PORT": str(port),
        "MEDCELL_GATEWAY_HTTP_PORT": str(free_port()),
        "MEDCELL_GATEWAY_BIND": "127.0.0.1",
    }
    client = docker.from_env()
    try:
        medcell(env, "up")
        created = medcell(env, "facility", "create", "web", "--name", "Praxis am Park")
        base = f"https://127.0.0.1:{port}/f/web"
        wait_healthy(f"{base}/healthz")
        container = _container_of(client, prefix, "web")

        def scan(needles: list[str]) -> list[str]:
            result = container.exec_run(["python3", "-c", SCAN, *needles])
            assert result.exit_code == 0, result.output
            return result.output.decode().split()

        yield Site(base, created["admin_user"], created["admin_password"], scan)
    finally:
        for args in (("facility", "delete", "web", "--yes"), ("down",)):
            try:
                medcell(env, *args)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(e, file=sys.stderr)
        remove_installation(client, prefix)


def _container_of(client, prefix: str, slug: str):
    labels = [f"medcell.instance={prefix}", f"medcell.facility={slug}"]
    (container,) = client.containers.list(filters={"label": labels})
    return container


# -- on this host -------------------------------------------------------------------------


def local_site(root: Path):
    """The facility app alone under gunicorn on loopback: quick, and no Docker needed."""
    port = free_port()
    data = root / "data"
    env = {
        **os.environ,
        "MEDCELL_FACILITY": "web",
        "MEDCELL_FACILITY_NAME": "Praxis am Park",
        "MEDCELL_DATA_DIR": str(data),
        "MEDCELL_KEY_DIR": str(root / "keys"),
        "MEDCELL_BIND": f"127.0.0.1:{port}",
    }
    admin = subprocess.run(
        [sys.executable, "-m", "services.facility", "create-admin"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    login = json.loads(admin.stdout)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy" / "gunicorn_facility.py"),
            "services.facility:create_app()",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(f"{base}/healthz")

        def scan(needles: list[str]) -> list[str]:
            hits = []
            for path in sorted(data.iterdir()):
                if path.is_file():
                    content = path.read_bytes()
                    hits += [f"{path.name} {n}" for n in needles if n.encode() in content]
            return hits

        yield Site(base, login["username"], login["password"], scan)
    finally:
        server.terminate()
        server.wait(timeout=30)

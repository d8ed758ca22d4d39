"""A throw-away medcell installation on the real engine, driven by the CLI as an operator would.

Each one has its own MEDCELL_HOME, Docker name prefix and loopback ports, so several can run at
once beside a real installation; `remove` deletes everything it made, also after a failure.
"""

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from devsupport import localhost
from devsupport.docker_objects import remove_installation
from devsupport.waiting import free_port
from medcell_common.origins import facility_origin

if TYPE_CHECKING:
    import requests

ROOT = Path(__file__).resolve().parents[1]


class Installation:
    def __init__(self, home: Path, stem: str = "mctest", **environment: str):
        self.prefix = f"{stem}{secrets.token_hex(3)}"
        self.https_port, self.http_port = free_port(), free_port()
        self.metrics_port = free_port()
        self.home = home
        self.env = {
            **os.environ,
            "MEDCELL_HOME": str(home),
            "MEDCELL_DOCKER_PREFIX": self.prefix,
            "MEDCELL_GATEWAY_PORT": str(self.https_port),
            "MEDCELL_GATEWAY_HTTP_PORT": str(self.http_port),
            "MEDCELL_GATEWAY_BIND": "127.0.0.1",
            # Its supervisor publishes /metrics on the host: a port of its own, on loopback.
            "MEDCELL_METRICS_BIND": f"127.0.0.1:{self.metrics_port}",
            **environment,
        }
        # By address: only the gateway's /healthz (any other path: 421, a host it does not serve).
        self.url = f"https://127.0.0.1:{self.https_port}"
        # Its own name, where the old /f/<slug>/ addresses redirect from.
        self.home_url = f"https://localhost:{self.https_port}"
        self.gateway = f"{self.prefix}-gateway"
        self.supervisor = f"{self.prefix}-supervisor"
        self.facilities: dict[str, dict] = {}

    @property
    def cert(self) -> Path:
        """The gateway's certificate (self-signed for this installation): what clients trust."""
        return self.home / "gateway" / "tls" / "cert.pem"

    def session(self) -> "requests.Session":
        """An HTTPS session that trusts this installation's own certificate, and only it, and
        reaches every facility's `<slug>.localhost`."""
        return localhost.session(verify=str(self.cert))

    def origin(self, slug: str) -> str:
        """The facility's own origin through this installation's gateway, without the slash."""
        return facility_origin(slug, port=self.https_port).rstrip("/")

    def api(self, slug: str) -> str:
        return f"{self.origin(slug)}/api/v1"

    def login(self, slug: str, session: "requests.Session") -> dict:
        """Log in as the facility's first admin; the Authorization header to send."""
        admin = self.facilities[slug]
        credentials = {"username": admin["admin_user"], "password": admin["admin_password"]}
        response = session.post(f"{self.api(slug)}/login", json=credentials, timeout=30)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def container(self, slug: str) -> str:
        return f"{self.prefix}-{slug}"

    def medcell(self, *args: str) -> dict | list | None:
        """Run `medcell ARGS... --json`; raise with its error output if it fails."""
        result = subprocess.run(
            [sys.executable, "-m", "provisioner", *args, "--json"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"medcell {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    def create(self, slug: str, *options: str) -> dict:
        self.facilities[slug] = self.medcell("facility", "create", slug, *options)
        return self.facilities[slug]

    def delete(self, slug: str) -> None:
        self.medcell("facility", "delete", slug, "--yes")
        self.facilities.pop(slug, None)

    @contextlib.contextmanager
    def own_facilities(self) -> Iterator["Installation"]:
        """For tests that share this installation: the facilities created inside the block are
        deleted when it ends, so the next user finds the installation as it was."""
        before = set(self.facilities)
        try:
            yield self
        finally:
            for slug in [slug for slug in self.facilities if slug not in before]:
                try:
                    self.delete(slug)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    print(e, file=sys.stderr)

    @cached_property
    def docker(self):
        """A Docker client for looking at what this installation runs."""
        import docker

        return docker.from_env()

    def logs(self, container: str) -> str:
        result = subprocess.run(["docker", "logs", container], capture_output=True, timeout=60)
        return (result.stdout + result.stderr).decode("utf-8", "replace")

    def keep_error_lines(self) -> None:
        """Append each facility's error lines (content-free: event, error type, where) to the file
        named by MEDCELL_TEST_ERROR_LOG, so a failed run shows why a facility answered 500."""
        target = os.environ.get("MEDCELL_TEST_ERROR_LOG")
        if not target:
            return
        lines = []
        for slug in list(self.facilities):
            try:
                log = self.logs(self.container(slug))
            except (OSError, subprocess.SubprocessError):
                continue
            lines += [f"{slug}: {line}" for line in log.splitlines() if '"level":"error"' in line]
        if lines:
            with open(target, "a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")

    def remove(self) -> None:
        """Delete the facilities and take the stack down as the CLI does, then sweep by label."""
        import docker

        self.keep_error_lines()
        for slug in list(self.facilities):
            try:
                self.delete(slug)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(e, file=sys.stderr)
        try:
            self.medcell("down")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(e, file=sys.stderr)
        remove_installation(docker.from_env(), self.prefix)

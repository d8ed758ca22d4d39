"""The cluster lab (deploy/lab.sh) as the cluster benchmarks drive it: its script, commands and
`medcell` run as its nodes, and the nodes' Docker engines."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
LAB_SCRIPT = ROOT / "deploy" / "lab.sh"


class Lab:
    """One named lab. Its directory is lab.sh's default for the name unless one is given."""

    def __init__(self, name: str = "bench", directory: str | Path | None = None):
        self.name = name
        self.env = {**os.environ, "MEDCELL_LAB": name}
        if directory is None:
            self.env.pop("MEDCELL_LAB_DIR", None)
            self.directory = Path(f"/var/lib/medcell-{name}")
        else:
            self.env["MEDCELL_LAB_DIR"] = str(directory)
            self.directory = Path(directory)

    def script(
        self, *args: str, timeout: float = 600, check: bool = False
    ) -> subprocess.CompletedProcess:
        """bash deploy/lab.sh ARGS; with `check`, a failure raises RuntimeError."""
        result = subprocess.run(
            ["bash", str(LAB_SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"lab.sh {' '.join(args[:4])}: {result.stderr[-2000:]}")
        return result

    def run(
        self, node: str, *command: str, timeout: float = 300, check: bool = False
    ) -> subprocess.CompletedProcess:
        """Run a command as `node` (bash deploy/lab.sh exec NODE -- COMMAND)."""
        return self.script("exec", node, "--", *command, timeout=timeout, check=check)

    def medcell(self, node: str, *args: str, timeout: float = 300) -> dict | list:
        """`medcell ARGS --json` on `node`, its answer parsed; a failure raises RuntimeError."""
        result = self.run(node, "medcell", *args, "--json", timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"medcell {' '.join(args)} on {node}: {result.stderr[-500:]}")
        return json.loads(result.stdout)

    def engine(self, node: str, timeout: int = 60) -> docker.DockerClient:
        """A client of `node`'s own Docker engine."""
        return docker.DockerClient(
            base_url=f"unix://{self.directory / node / 'docker.sock'}", timeout=timeout
        )

    def dockerd_pid(self, node: str) -> int:
        return int((self.directory / node / "dockerd.pid").read_text().strip())

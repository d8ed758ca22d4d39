"""routes.json: the gateway's only view of which facilities exist and whether they run."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.config import Config
from provisioner.state import write_json_atomic

ROUTES_FILE = "routes.json"
ROUTES_VERSION = 1


def routes_path(config: Config) -> Path:
    return config.gateway_dir / ROUTES_FILE


def build_routes(config: Config, states: dict[str, str]) -> dict:
    """The routes document for facilities mapped to `running` or `stopped`."""
    facilities = {
        slug: {
            "upstream": f"http://{config.facility(slug).container}:8000",
            "state": "running" if state == "running" else "stopped",
        }
        for slug, state in sorted(states.items())
    }
    return {"version": ROUTES_VERSION, "facilities": facilities}


def write_routes(config: Config, routes: dict) -> Path:
    """Replace routes.json atomically; the gateway picks the new file up by itself."""
    config.gateway_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = routes_path(config)
    write_json_atomic(path, routes, mode=0o644)
    return path


def read_routes(config: Config) -> dict | None:
    """The current routes document, or None if there is none yet."""
    try:
        return json.loads(routes_path(config).read_text())
    except FileNotFoundError:
        return None

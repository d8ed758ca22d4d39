"""`python -m provisioner.cli.demo` (`make run`): ensure the demo facility, print its login.

Demo only: the demo admin's password is kept in $MEDCELL_HOME/demo-credentials.json (mode 0600) so
that `make run` can show it again. Real facilities never have their password stored anywhere.
"""

from __future__ import annotations

import json
import sys

from medcell_common.interfaces import Status
from provisioner.cli.commands import Runtime
from provisioner.cli.facilities import Facilities
from provisioner.host.errors import ProvisionerError
from provisioner.host.home import ensure_home, write_json_atomic

DEMO_SLUG = "demo"
DEMO_NAME = "Praxis Dr. Müller"
CREDENTIALS_FILE = "demo-credentials.json"


def ensure_demo(facilities: Facilities) -> dict:
    """Create (or start) the demo facility; return its URL and staff login."""
    config = facilities.config
    path = ensure_home(config) / CREDENTIALS_FILE
    status = {f["slug"]: f["status"] for f in facilities.list()}.get(DEMO_SLUG)
    if status is None:
        created = facilities.create(DEMO_SLUG, name=DEMO_NAME)
        login = {"username": created["admin_user"], "password": created["admin_password"]}
        write_json_atomic(path, login, mode=0o600)
    elif status != Status.RUNNING:
        facilities.start(DEMO_SLUG)
    try:
        login = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        login = {"username": "admin", "password": None}
    return {"url": config.facility_url(DEMO_SLUG), **login}


def main() -> int:
    """Print the demo facility's URL and staff login."""
    try:
        demo = ensure_demo(Runtime.from_env().facilities)
    except ProvisionerError as e:
        print(f"Error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    password = demo["password"] or "(unknown: it was shown once when the demo was created)"
    print(f"\nmedcell demo facility: {demo['url']}")
    print(f"  staff login: {demo['username']} / {password}")
    print("  (self-signed certificate: your browser will ask you to accept it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

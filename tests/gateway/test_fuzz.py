"""The outside fuzzer once more, through the real gateway (host nginx) at the facility's own
origin: what the gateway answers itself (refused targets, limits) must fit the API description
as well as what the facility answers."""

import json
import subprocess
import sys

import pytest

from devsupport import Gunicorn, localhost
from devsupport.gateway import GatewayServer, write_routes
from tests.facility.test_fuzz import ROOT, SLUG, Gateway, fuzz


@pytest.fixture
def facility_behind_gateway(tmp_path):
    """A facility under gunicorn on its socket, and a gateway of its own routing to it."""
    gateway = GatewayServer(tmp_path, MEDCELL_GATEWAY_WORKERS="1")
    gateway.make_tls_files()
    write_routes(gateway.routes, {SLUG: "running"}, generation=1)
    env = {
        "MEDCELL_FACILITY": SLUG,
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
        "MEDCELL_PUBLIC_URL": f"{gateway.origin(SLUG)}/",
    }
    socket = tmp_path / "run" / "facilities" / SLUG / "app.sock"
    socket.parent.mkdir(parents=True)
    server = Gunicorn(
        "deploy/gunicorn_facility.py",
        "services.facility:create_app()",
        env,
        tmp_path / "server.log",
        socket=socket,
    )
    admin = subprocess.run(
        [sys.executable, "-m", "services.facility", "create-admin"],
        env=server.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    server.admin = json.loads(admin)
    server.start()
    gateway.start(generation=1)
    yield server, gateway
    gateway.stop()
    server.stop()


def test_the_fuzzer_finds_nothing_through_the_gateway(facility_behind_gateway, tmp_path):
    server, gateway = facility_behind_gateway
    base = gateway.origin(SLUG)
    with localhost.session(verify=gateway.cert) as http:
        token = http.post(f"{base}/api/v1/login", json=server.admin, timeout=10).json()["token"]
        logout = http.post(f"{base}/api/v1/login", json=server.admin, timeout=10).json()["token"]
    route = Gateway(gateway.url, f"{SLUG}.localhost:{gateway.port}", gateway.cert)
    (tmp_path / "fuzz").mkdir()
    fuzz(
        server,
        tmp_path / "fuzz",
        token,
        # Logging out ends the token the fuzzer uses: that operation gets one of its own.
        [{"include-path": "/api/v1/logout", "headers": {"Authorization": f"Bearer {logout}"}}],
        gateway=route,
    )

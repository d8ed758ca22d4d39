"""The outside fuzzer once more, through the real gateway (host nginx) at the facility's own
origin: what the gateway answers itself (refused targets, limits) must fit the API description
as well as what the facility answers."""

import pytest

from devsupport import localhost
from tests.facility.test_fuzz import RULES_BEYOND_THE_SCHEMA, SLUG, Gateway, fuzz

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml


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
        [
            {"include-path": "/api/v1/logout", "headers": {"Authorization": f"Bearer {logout}"}},
            *RULES_BEYOND_THE_SCHEMA,
        ],
        gateway=route,
    )

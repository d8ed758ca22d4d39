"""Request counts from nginx's own access log (gateway/requestcount.py), as the supervisor's
/metrics exports them: a real gateway (nginx and its control plane) in front of a real server on
a unix socket; the counts match the requests made, by category and status, and carry nothing
else."""

from collections import Counter

import pytest

from devsupport import localhost
from devsupport.gateway import write_routes
from medcell_common.interfaces import GATEWAY_REQUESTS_FILE
from provisioner.supervisor.metrics import GatewayRequests, Metrics
from tests.provisioner.sockets.fakes import wait_until

from .conftest import prepare
from .upstream import UnixServer

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

SECRET = "S3CRET"


@pytest.fixture
def counted(tmp_path_factory, monkeypatch):
    gateway = prepare(tmp_path_factory.mktemp("gc"))
    server = UnixServer("a", gateway.socket_of("a")).start()
    write_routes(gateway.routes, {"a": "running", "resting": "stopped"}, generation=1)
    gateway.start(generation=1)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", gateway.cert)
    yield gateway
    gateway.stop()
    server.stop()


def test_request_counts_match_the_requests_made(counted):
    made: Counter = Counter()
    for path, category in [
        (f"/api/v1/conversations?token={SECRET}", "api"),
        ("/api/v1/login", "api"),
        (f"/p/{SECRET}-link", "patient-link"),
        ("/", "page"),
    ]:
        for origin in (counted.origin("a"), counted.origin("resting")):
            response = localhost.get(f"{origin}{path}", headers={"Authorization": SECRET})
            made[(category, str(response.status_code))] += 1
    assert made[("api", "503")] == 2  # the stopped facility's answers are counted too

    source = GatewayRequests(counted.run / "gateway" / GATEWAY_REQUESTS_FILE)

    def counts():
        read = source.read()
        return None if read is None else Counter(read[0])

    wait_until(lambda: counts() == made)
    _, buckets, total = source.read()
    assert sum(buckets) == sum(made.values()) and total >= 0

    body = Metrics(gateway_requests=source.path).exposition()
    assert b'medcell_gateway_requests_total{category="api",status="503"} 2.0' in body
    assert f"medcell_gateway_request_duration_seconds_count {sum(made.values())}.0".encode() in body
    assert SECRET.encode() not in body and b"127.0.0.1" not in body

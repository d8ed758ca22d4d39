"""The supervisor's Prometheus endpoint (provisioner/supervisor/metrics.py): its real loop over the
fake engine and fake facilities on real sockets, scraped over real HTTP."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from medcell_common.interfaces import HELD_HEADER
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import InvalidArgument
from provisioner.supervisor.metrics import MAX_CONNECTIONS, Metrics
from provisioner.supervisor.node_api import NodeService
from provisioner.supervisor.service import Supervisor
from tests.provisioner.sockets.fakes import wait_until
from tests.provisioner.sockets.test_supervisor import post, run_for


def fetch(server, path: str = "/metrics", method: str = "GET") -> tuple[int, str, bytes]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type") or "", body


def samples(server) -> dict[tuple[str, frozenset], float]:
    status, _, body = fetch(server)
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
def start(config, engine, clock, gateway):
    """The supervisor's own loop (as `python -m provisioner.supervisor` runs it), its wake socket
    and its metrics on a free loopback port."""
    made = []

    def start():
        supervisor = Supervisor(
            dataclasses.replace(config, metrics_bind=("127.0.0.1", 0)),
            DockerBackend(engine),
            clock=clock,
            tick=0.02,
        )
        supervisor.start_server()
        server = supervisor.start_metrics()
        loop = threading.Thread(target=supervisor.run)
        loop.start()
        made.append((supervisor, loop))
        return supervisor, server

    yield start
    for supervisor, loop in made:
        supervisor.stop()
        loop.join(30)
        supervisor.close()


def test_a_scrape_counts_facilities_by_state_and_a_request_wake(config, engine, start):
    engine.add_facility("praxis", running=False, asleep=True)
    engine.add_facility("awake")
    engine.add_facility("halted", running=False, desired="stopped")
    _, server = start()
    wait_until(lambda: value(samples(server), "medcell_facilities", state="asleep") == 1)

    code, _, _ = post(config, "/wake/praxis")

    assert code == 200
    wait_until(lambda: value(samples(server), "medcell_facilities", state="running") == 2)
    found = samples(server)
    assert value(found, "medcell_facilities", state="asleep") == 0
    assert value(found, "medcell_facilities", state="stopped") == 1
    assert value(found, "medcell_facilities", state="unhealthy") == 0
    assert value(found, "medcell_wakes_total", cause="request") == 1
    assert value(found, "medcell_wakes_total", cause="deadline") == 0
    assert value(found, "medcell_wake_seconds_count") == 1
    assert value(found, "medcell_wake_seconds_bucket", le="+Inf") == 1
    # One host: no node label anywhere.
    assert not any("node" in dict(labels) for _, labels in found)


def test_a_wake_asked_for_an_awake_facility_is_no_wake(config, engine, start):
    # The gateway asks for a wake for each request it holds until it learns the new route: the
    # facility started once, so once is what the wake series say.
    engine.add_facility("praxis", running=False, asleep=True)
    _, server = start()
    for _ in range(3):
        assert post(config, "/wake/praxis")[0] == 200
    wait_until(lambda: value(samples(server), "medcell_facilities", state="running") == 1)
    found = samples(server)
    assert value(found, "medcell_wakes_total", cause="request") == 1
    assert value(found, "medcell_wake_seconds_count") == 1


def held_wake(config, slug: str, held: str) -> int:
    """POST /wake/<slug> as the gateway's activator asks it, having held a request `held` ms."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(config.supervisor_socket))
    connection = http.client.HTTPConnection("localhost")
    connection.sock = sock
    connection.request("POST", f"/wake/{slug}", headers={HELD_HEADER: held})
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_wake_lasts_from_the_first_request_held_until_the_facility_answers(config, engine, start):
    # The activator held the request 7 s before it could ask (its supervisor was restarting):
    # the patient waited that long too.
    engine.add_facility("praxis", running=False, asleep=True)
    engine.add_facility("desk", running=False, asleep=True)
    _, server = start()
    assert held_wake(config, "praxis", "7000") == 200
    # Nonsense in the header is not believed: the wake lasts from when it was asked.
    assert held_wake(config, "desk", "99999999999") == 200
    wait_until(lambda: value(samples(server), "medcell_wake_seconds_count") == 2)
    found = samples(server)
    assert value(found, "medcell_wake_seconds_bucket", le="5.0") == 1
    assert value(found, "medcell_wake_seconds_bucket", le="10.0") == 2
    assert value(found, "medcell_wake_seconds_sum") >= 7


def test_the_endpoint_serves_only_get_metrics(start):
    _, server = start()
    status, content_type, _ = fetch(server)
    assert status == 200 and content_type.startswith("text/plain")
    status, _, body = fetch(server, "/wake/praxis")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, _, body = fetch(server, "/metrics", "POST")
    assert status == 405 and json.loads(body)["error"]["code"] == "method_not_allowed"


def test_in_cluster_mode_every_series_names_its_node():
    node: list[str | None] = [None]
    metrics = Metrics(lambda: node[0])
    metrics.woke("deadline", 1.5)
    assert b'node="' not in metrics.exposition()  # its name is not known yet
    node[0] = "node2"
    families = list(text_string_to_metric_families(metrics.exposition().decode()))
    found = [sample for family in families for sample in family.samples]
    assert found and all(sample.labels.get("node") == "node2" for sample in found)


def test_the_bind_is_loopback_unless_the_operator_says_otherwise(tmp_path):
    home = {"MEDCELL_HOME": str(tmp_path)}
    assert Config.from_env(home).metrics_bind == ("127.0.0.1", 9464)
    given = {**home, "MEDCELL_METRICS_BIND": "10.0.0.5:9100"}
    assert Config.from_env(given).metrics_bind == ("10.0.0.5", 9100)
    for bad in ("localhost", "10.0.0.5:99999", "::1", "10.0.0.5:x"):
        with pytest.raises(InvalidArgument, match="MEDCELL_METRICS_BIND"):
            Config.from_env({**home, "MEDCELL_METRICS_BIND": bad})


def totals(expiry_buckets: list[int], staff: int = 0, sum_ms: int = 0) -> dict:
    """A facility's `deletions` as its status reports them (DELETION_LAG_BUCKETS, then the rest)."""
    buckets = [*expiry_buckets, *[0] * (10 - len(expiry_buckets))]
    reasons = {"patient": 0, "staff": staff, "expiry": sum(buckets), "facility_wipe": 0}
    return {"reasons": reasons, "lag_buckets": buckets, "lag_sum_ms": sum_ms}


def scrape(supervisor) -> dict:
    found = {}
    for family in text_string_to_metric_families(supervisor.metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_deletion_reports_are_counted_once_across_probes_and_restarts(engine, make, clock):
    app = engine.add_facility("praxis")
    app.deletions = totals([0])  # new: nothing deleted yet when it is first probed
    supervisor = make()
    run_for(supervisor, clock, 30)
    app.deletions = totals([0, 0, 1], sum_ms=10_000)  # one expired conversation, 10 s late
    run_for(supervisor, clock, 120)  # many probes, the same totals each time

    found = scrape(supervisor)
    assert value(found, "medcell_deletion_lag_seconds_bucket", le="5.0") == 0
    assert value(found, "medcell_deletion_lag_seconds_bucket", le="15.0") == 1
    assert value(found, "medcell_deletion_lag_seconds_bucket", le="60.0") == 1
    assert value(found, "medcell_deletion_lag_seconds_count") == 1
    assert value(found, "medcell_deletion_lag_seconds_sum") == 10.0
    assert value(found, "medcell_deletions_total", reason="expiry") == 1

    # A supervisor started again counts only what is new since the last report it saw.
    supervisor.close()
    app.deletions = totals([0, 0, 1, 0, 0, 0, 0, 1], staff=2, sum_ms=710_000)  # one 700 s late
    again = make()
    run_for(again, clock, 120)

    found = scrape(again)
    assert value(found, "medcell_deletion_lag_seconds_count") == 1
    assert value(found, "medcell_deletion_lag_seconds_bucket", le="60.0") == 0
    assert value(found, "medcell_deletions_total", reason="staff") == 2
    assert value(found, "medcell_deletions_late_total", facility="praxis") == 1


def test_a_moved_or_restored_facility_brings_no_deletions_counted_elsewhere(
    config, engine, make, clock
):
    # `moved` is prepared here empty, then its data arrives from the node that counted its 5
    # deletions already (the node API restores it).
    moved = engine.add_facility("moved")
    moved.deletions = totals([0])
    # `restored` was counted here up to 3, then restored from a backup taken at 2.
    restored = engine.add_facility("restored")
    restored.deletions = totals([0])
    supervisor = make()
    run_for(supervisor, clock, 30)
    restored.deletions = totals([3], sum_ms=600)
    run_for(supervisor, clock, 30)
    assert value(scrape(supervisor), "medcell_deletion_lag_seconds_count") == 3

    node = NodeService(
        config, DockerBackend(engine), restored=supervisor.metrics.deletions.adopt_next
    )
    node.restored("moved")  # what its facility_restore does first
    moved.deletions = totals([0, 5], staff=1, sum_ms=20_000)
    restored.deletions = totals([2], sum_ms=400)
    run_for(supervisor, clock, 30)

    found = scrape(supervisor)
    assert value(found, "medcell_deletion_lag_seconds_count") == 3
    assert value(found, "medcell_deletions_total", reason="staff") == 0

    # What either deletes from now on counts.
    moved.deletions = totals([1, 5], staff=1, sum_ms=20_500)
    restored.deletions = totals([3], sum_ms=600)
    run_for(supervisor, clock, 30)
    found = scrape(supervisor)
    assert value(found, "medcell_deletion_lag_seconds_count") == 5
    assert value(found, "medcell_deletion_lag_seconds_bucket", le="1.0") == 5


def test_a_facility_cannot_inflate_the_series_or_name_a_label(engine, make, clock):
    honest, hostile = engine.add_facility("honest"), engine.add_facility("hostile")
    honest.deletions = hostile.deletions = totals([0])
    supervisor = make()
    run_for(supervisor, clock, 30)
    honest.deletions = totals([1])
    hostile.deletions = totals([0] * 9 + [10**9])  # a billion "late" deletions at once
    run_for(supervisor, clock, 60)
    found = scrape(supervisor)
    assert value(found, "medcell_deletion_lag_seconds_count") == 1
    assert value(found, "medcell_deletions_late_total", facility="hostile") is None

    # A reason of its own choosing makes its status unreadable; it never becomes a label.
    hostile.deletions = {**totals([0]), "reasons": {"<script>": 1}}
    run_for(supervisor, clock, 60)
    body = supervisor.metrics.exposition()
    assert b"script" not in body
    assert value(scrape(supervisor), "medcell_deletion_lag_seconds_count") == 1


def test_storage_is_reported_per_facility_beside_its_quota(engine, make, clock):
    app = engine.add_facility("praxis")
    app.storage = {"used_bytes": 3 * 1024**2, "quota_bytes": 2 * 1024**3}
    hostile = engine.add_facility("hostile")
    hostile.storage = {"used_bytes": -1, "quota_bytes": 1}
    supervisor = make()
    run_for(supervisor, clock, 60)
    supervisor.metrics.set_states(supervisor.scheduler.entries)
    found = scrape(supervisor)
    assert value(found, "medcell_storage_used_bytes", facility="praxis") == 3 * 1024**2
    assert value(found, "medcell_storage_quota_bytes", facility="praxis") == 2 * 1024**3
    assert value(found, "medcell_storage_used_bytes", facility="hostile") is None


def test_idle_scrapers_hold_at_most_a_few_threads_and_only_for_a_while(start):
    _, server = start()
    address = server.server_address[:2]
    idle = [socket.create_connection(address, timeout=30) for _ in range(MAX_CONNECTIONS)]
    wait_until(lambda: server.slots._value == 0)

    # One more while all are taken: closed at once, never queued.
    extra = socket.create_connection(address, timeout=30)
    assert extra.recv(1) == b""
    extra.close()
    # The idle ones are dropped after their time to ask; then scrapes are answered again.
    for sock in idle:
        assert sock.recv(1) == b""
        sock.close()
    wait_until(lambda: fetch(server)[0] == 200)


def test_gateway_counts_not_of_their_shape_give_no_series(tmp_path):
    path = tmp_path / "requests.json"
    good = {"counts": {"api 200": 3}, "duration_buckets": [3] + [0] * 12, "duration_sum": 0.1}
    path.write_text(json.dumps(good))
    assert b'medcell_gateway_requests_total{category="api",status="200"} 3.0' in (
        Metrics(gateway_requests=path).exposition()
    )
    for bad in (
        {**good, "counts": {"<script> 200": 1}},
        {**good, "counts": {"api 999": 1}},
        {**good, "counts": {"api 200": -1}},
        {**good, "duration_buckets": [1]},
        {**good, "duration_sum": "NaN"},
        {**good, "counts": {f"api {200 + i % 300}": 1 for i in range(300)}, "pad": "x" * 70_000},
    ):
        path.write_text(json.dumps(bad))
        body = Metrics(gateway_requests=path).exposition()
        assert b"medcell_gateway" not in body and b"script" not in body

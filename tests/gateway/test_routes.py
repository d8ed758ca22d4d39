"""The route table follows routes.json v2: changes are applied by a graceful reload, acknowledged in
applied.json, and a broken file never replaces the last good table."""

import json
import threading
import time

import pytest

from devsupport import localhost
from gateway.errors import RoutesError
from gateway.routes import Peer, RoutesFile, RouteTable, parse

from .conftest import STANDARD_ROUTES, write_routes


@pytest.fixture
def restore_routes(gateway):
    yield
    generation = 1000 + time.monotonic_ns() % 10**6
    write_routes(gateway.routes, STANDARD_ROUTES, generation=generation)
    gateway.wait_applied(generation)


def test_each_lifecycle_state_is_applied_and_acknowledged(gateway, restore_routes):
    url = f"{gateway.origin('c')}/api/v1/x"
    assert localhost.get(url).status_code == 404
    generation = (gateway.applied() or 0) + 1
    for state, status in (("running", 503), ("stopped", 503), ("asleep", 404)):
        routes = {**STANDARD_ROUTES, "c": state}
        write_routes(gateway.routes, routes, generation)
        gateway.wait_applied(generation)
        response = localhost.get(url)
        assert response.status_code == status  # c has no socket; asleep: the supervisor knows none
        if state == "stopped":
            assert response.headers["Retry-After"] == "30"
        generation += 1
    write_routes(gateway.routes, STANDARD_ROUTES, generation)
    gateway.wait_applied(generation)
    assert localhost.get(url).status_code == 404
    assert localhost.get(f"{gateway.origin('a')}/").status_code == 200


def test_reload_drops_no_request_in_flight(gateway, restore_routes):
    results = []
    streaming = threading.Event()

    # The shared gateway times out at 1 s; /slow takes 2 s: use a quicker proof of survival,
    # a large download that is still streaming while nginx reloads.
    def download():
        with localhost.get(f"{gateway.origin('a')}/big/32", stream=True) as response:
            got = 0
            for chunk in response.iter_content(65536):
                got += len(chunk)
                streaming.set()
                time.sleep(0.0005)
            results.append(got)

    thread = threading.Thread(target=download)
    thread.start()
    assert streaming.wait(timeout=10)
    generation = (gateway.applied() or 0) + 1
    write_routes(gateway.routes, {**STANDARD_ROUTES, "c": "stopped"}, generation)
    gateway.wait_applied(generation)
    thread.join(timeout=30)
    assert results == [32 * 1024 * 1024]


def test_broken_file_keeps_the_last_good_table(gateway, gateway_log, restore_routes):
    generation = gateway.applied()
    gateway.routes.write_text('{"version": 2, "generation": 99, "facilities": {')
    assert gateway_log.records(event="routes_unusable")
    assert localhost.get(f"{gateway.origin('a')}/").status_code == 200
    assert gateway.applied() == generation


def test_table_parsing_admits_only_strict_slugs_and_states():
    document = {"version": 2, "generation": 7, "facilities": {"ok": {"state": "asleep"}}}
    assert parse(json.dumps(document)) == RouteTable(generation=7, facilities={"ok": "asleep"})


@pytest.mark.parametrize(
    "entry",
    [{"A": {"state": "running"}}, {"x;y": {"state": "running"}}, {"bad": {"state": "paused"}},
     {"b": "running"}, {"c": {"state": ["running"]}}],
)  # fmt: skip
def test_one_malformed_entry_makes_the_whole_table_unusable(entry):
    # Applying the rest would silently drop a facility's route: its patients would get 404.
    facilities = {"ok": {"state": "running"}, **entry}
    with pytest.raises(RoutesError, match="malformed entry"):
        parse(json.dumps({"version": 2, "generation": 7, "facilities": facilities}))


def test_a_remote_entry_names_the_node_and_its_gateways_address():
    remote = {"state": "remote", "node": "node-3.lab", "address": "10.20.0.3"}
    document = {"version": 2, "generation": 8, "facilities": {"far": remote}}
    assert parse(json.dumps(document)) == RouteTable(
        generation=8,
        facilities={"far": "remote"},
        peers={"far": Peer(node="node-3.lab", address="10.20.0.3")},
    )


@pytest.mark.parametrize(
    "remote",
    [
        {"state": "remote"},
        {"state": "remote", "node": "n1"},
        {"state": "remote", "address": "10.0.0.3"},
        {"state": "remote", "node": "n1;", "address": "10.0.0.3"},
        {"state": "remote", "node": "n1 x", "address": "10.0.0.3"},
        {"state": "remote", "node": "-n1", "address": "10.0.0.3"},
        {"state": "remote", "node": "n" * 64, "address": "10.0.0.3"},
        {"state": "remote", "node": 1, "address": "10.0.0.3"},
        {"state": "remote", "node": "n1", "address": "10.0.0.3:8444"},
        {"state": "remote", "node": "n1", "address": "010.0.0.3"},
        {"state": "remote", "node": "n1", "address": "10.0.0.3;"},
        {"state": "remote", "node": "n1", "address": "fd00::3"},
        {"state": "remote", "node": "n1", "address": "node3.example"},
        {"state": "remote", "node": "n1", "address": "0.0.0.0"},
        {"state": "remote", "node": "n1", "address": "224.0.0.1"},
        {"state": "remote", "node": "n1", "address": "255.255.255.255"},
        {"state": "remote", "node": "n1", "address": 167772163},
        {"state": "remote", "node": "n1", "address": " 10.0.0.3"},
    ],
    ids=repr,
)
def test_a_remote_entry_without_a_safe_node_and_ipv4_address_spoils_the_table(remote):
    facilities = {"ok": {"state": "running"}, "far": remote}
    with pytest.raises(RoutesError, match="malformed entry"):
        parse(json.dumps({"version": 2, "generation": 7, "facilities": facilities}))


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 2, "generation": 1, "facilities": {',
        '{"version": 1, "generation": 1, "facilities": {}}',
        '{"version": 2, "facilities": {}}',
        '{"version": 2, "generation": "1", "facilities": {}}',
        '{"version": 2, "generation": 1, "facilities": []}',
        "",
        b'\xff\xfe{"version": 2}',
        "[" * 100_000,
    ],
    ids=lambda text: repr(text[:24]),
)
def test_unusable_documents_are_refused(text):
    with pytest.raises(RoutesError):
        parse(text)


def test_missing_file_at_start_means_no_facilities_but_later_keeps_the_table(tmp_path):
    path = tmp_path / "routes.json"
    routes = RoutesFile(str(path))
    assert routes.poll() == RouteTable(generation=0)
    write_routes(path, {"a": "running"}, generation=3)
    assert routes.poll() == RouteTable(generation=3, facilities={"a": "running"})
    path.unlink()
    assert routes.poll() is None
    assert routes.table.facilities == {"a": "running"}


def test_connections_to_an_awake_facility_are_kept_and_reused(gateway, upstreams):
    # A new connection per request costs a single-process facility more than a small request.
    before = upstreams["a"].connections
    with localhost.session() as client:
        statuses = [client.get(f"{gateway.origin('a')}/echo").status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert upstreams["a"].connections - before <= 4  # at most a couple per nginx worker

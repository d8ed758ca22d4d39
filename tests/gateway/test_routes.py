"""The routing table follows routes.json: create, stop, start and delete take effect within 1 s."""

import json
import time

import pytest
import requests

from gateway.routes import RouteTable, parse_route

from .conftest import write_routes


def wait_for_status(url: str, status: int, within: float = 1.0) -> float:
    """Poll `url` until it answers `status`; return how long that took (fails after `within`)."""
    started = time.monotonic()
    while True:
        got = requests.get(url, timeout=2).status_code
        elapsed = time.monotonic() - started
        if got == status:
            return elapsed
        assert elapsed < within, f"still {got} after {elapsed:.2f}s, wanted {status}"
        time.sleep(0.01)


def test_facility_lifecycle_is_reflected_within_one_second(make_gateway, upstreams, tmp_path):
    routes = tmp_path / "routes.json"
    a, b = upstreams["a"].origin, upstreams["b"].origin
    write_routes(routes, {"a": (a, "running")})
    # The production refresh interval, not the tests' faster one.
    gateway = make_gateway(ROUTES_FILE=str(routes), ROUTES_REFRESH=0.1)
    url = f"{gateway.url}/f/b/api/v1/x"
    assert requests.get(url).status_code == 404

    write_routes(routes, {"a": (a, "running"), "b": (b, "running")})
    wait_for_status(url, 200)
    assert requests.get(url).json()["upstream"] == "b"

    write_routes(routes, {"a": (a, "running"), "b": (b, "stopped")})
    wait_for_status(url, 503)

    write_routes(routes, {"a": (a, "running"), "b": (b, "running")})
    wait_for_status(url, 200)

    write_routes(routes, {"a": (a, "running")})
    wait_for_status(url, 404)
    assert requests.get(f"{gateway.url}/f/a/").status_code == 200


def test_in_place_rewrite_is_noticed(make_gateway, upstreams, tmp_path):
    routes = tmp_path / "routes.json"
    write_routes(routes, {})
    gateway = make_gateway(ROUTES_FILE=str(routes))
    document = {
        "version": 1,
        "facilities": {"a": {"upstream": upstreams["a"].origin, "state": "running"}},
    }
    routes.write_text(json.dumps(document))  # same inode, new size and mtime
    wait_for_status(f"{gateway.url}/f/a/", 200)


def test_missing_routes_file_means_no_facilities(make_gateway, tmp_path):
    gateway = make_gateway(ROUTES_FILE=str(tmp_path / "absent.json"))
    assert requests.get(f"{gateway.url}/f/a/").status_code == 404
    assert requests.get(f"{gateway.url}/healthz").status_code == 200


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_broken_file_keeps_the_last_good_table(tmp_path):
    path = tmp_path / "routes.json"
    write_routes(path, {"a": ("http://medcell-a:8000", "running")})
    clock = FakeClock()
    table = RouteTable(str(path), refresh_interval=0.1, clock=clock)
    assert table.get("a").upstream == "http://medcell-a:8000"

    path.write_text('{"version": 1, "facilities": {')
    clock.now += 1
    assert table.get("a") is not None

    path.write_text('{"version": 2, "facilities": {}}')
    clock.now += 1
    assert table.get("a") is not None

    write_routes(path, {"b": ("http://medcell-b:8000", "stopped")})
    clock.now += 1
    assert table.get("a") is None
    assert table.get("b").running is False


def test_file_is_not_read_more_often_than_the_interval(tmp_path):
    path = tmp_path / "routes.json"
    write_routes(path, {"a": ("http://medcell-a:8000", "running")})
    clock = FakeClock()
    table = RouteTable(str(path), refresh_interval=0.1, clock=clock)
    assert table.get("a") is not None
    write_routes(path, {})
    clock.now += 0.05
    assert table.get("a") is not None  # not looked at yet
    clock.now += 0.06
    assert table.get("a") is None


def test_changes_are_announced_so_pools_of_deleted_facilities_close(tmp_path):
    path = tmp_path / "routes.json"
    write_routes(path, {"a": ("http://medcell-a:8000", "running")})
    clock, seen = FakeClock(), []
    table = RouteTable(str(path), clock=clock, on_change=lambda routes: seen.append(sorted(routes)))
    table.refresh()
    write_routes(path, {})
    clock.now += 1
    table.refresh()
    assert seen == [["a"], []]


@pytest.mark.parametrize(
    ("slug", "entry"),
    [
        ("a", {"upstream": "https://medcell-a:8000", "state": "running"}),
        ("a", {"upstream": "http://medcell-a:8000/f/b", "state": "running"}),
        ("a", {"upstream": "http://medcell-a:8000?x=1", "state": "running"}),
        ("a", {"upstream": "http://user:pw@medcell-a:8000", "state": "running"}),
        ("a", {"upstream": "http://medcell-a:99999", "state": "running"}),
        ("a", {"upstream": "file:///etc/passwd", "state": "running"}),
        ("a", {"upstream": "http://medcell-a:8000", "state": "paused"}),
        ("a", {"state": "running"}),
        ("A", {"upstream": "http://medcell-a:8000", "state": "running"}),
        ("../a", {"upstream": "http://medcell-a:8000", "state": "running"}),
        ("a", "http://medcell-a:8000"),
    ],
)
def test_malformed_route_entries_are_skipped(slug, entry):
    assert parse_route(slug, entry) is None


def test_well_formed_route_entry_is_reduced_to_its_origin():
    route = parse_route(
        "clinic-1", {"upstream": "http://medcell-clinic-1:8000/", "state": "stopped"}
    )
    assert (route.upstream, route.running) == ("http://medcell-clinic-1:8000", False)


def test_new_or_restarted_facility_is_served_without_waiting_for_the_interval(tmp_path):
    path = tmp_path / "routes.json"
    write_routes(path, {"a": ("http://medcell-a:8000", "stopped")})
    table = RouteTable(str(path), refresh_interval=3600, clock=FakeClock())
    assert table.get("a").running is False
    assert table.get("b") is None
    write_routes(
        path, {"a": ("http://medcell-a:8000", "running"), "b": ("http://medcell-b:8000", "running")}
    )
    assert table.get("a").running is True
    assert table.get("b") is not None


def test_a_refusal_waits_for_a_reload_already_under_way(tmp_path):
    """A request must not be refused from the old table while another thread is reloading."""
    import threading

    routes = tmp_path / "routes.json"
    write_routes(routes, {})
    table = RouteTable(str(routes), refresh_interval=3600)
    assert table.get("alpha") is None
    write_routes(routes, {"alpha": ("http://medcell-alpha:8000", "running")})
    found = []
    with table._lock:  # another thread is in the middle of a reload
        asking = threading.Thread(target=lambda: found.append(table.get("alpha")))
        asking.start()
        time.sleep(0.05)
    asking.join(timeout=5)
    assert found and found[0] is not None and found[0].running


def test_a_rewrite_that_keeps_inode_size_and_mtime_is_still_seen(tmp_path):
    """'running' and 'stopped' have the same length; a coarse clock can give the same mtime."""
    import os

    routes = tmp_path / "routes.json"
    write_routes(routes, {"alpha": ("http://medcell-alpha:8000", "stopped")})
    table = RouteTable(str(routes), refresh_interval=3600)
    assert table.get("alpha").running is False
    before = os.stat(routes)
    text = routes.read_text().replace('"stopped"', '"running"')
    with open(routes, "r+", encoding="utf-8") as f:  # same inode, same size
        f.write(text)
    os.utime(routes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert table.get("alpha").running is True

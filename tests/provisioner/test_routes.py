"""routes.json v2: route states, generations, and the gateway's acknowledgement."""

import json
import threading

import pytest

from provisioner.host import routes, state_file
from provisioner.host.errors import InvalidArgument
from provisioner.host.state_file import FacilityState


def table(config) -> dict:
    return json.loads((config.gateway_dir / "routes.json").read_text())


@pytest.mark.parametrize(
    ("running", "st", "expected"),
    [
        (True, FacilityState(), "running"),
        (False, FacilityState(), "asleep"),  # should run: the activator gets it started
        (False, FacilityState(asleep=True), "asleep"),
        (True, FacilityState(asleep=True), "asleep"),  # being put to sleep
        (False, FacilityState(desired="stopped"), "stopped"),
        (True, FacilityState(desired="stopped"), "running"),  # still stopping
    ],
)
def test_route_state(running, st, expected):
    assert routes.route_state(running, st) == expected


def test_publish_writes_version_2_with_growing_generation(config):
    assert routes.publish(config, {"b": "asleep", "a": "running"}) == 1
    assert table(config) == {
        "version": 2,
        "generation": 1,
        "facilities": {"a": {"state": "running"}, "b": {"state": "asleep"}},
    }
    assert routes.publish(config, {}) == 2
    assert table(config)["facilities"] == {}


def test_set_route_changes_and_removes_one_entry(config):
    routes.publish(config, {"a": "running", "b": "running"})
    assert routes.set_route(config, "a", "asleep") == 2
    assert routes.set_route(config, "c", "stopped") == 3
    assert routes.set_route(config, "b", None) == 4
    assert table(config)["facilities"] == {"a": {"state": "asleep"}, "c": {"state": "stopped"}}


def test_unknown_route_state_is_refused_and_nothing_written(config):
    with pytest.raises(InvalidArgument):
        routes.set_route(config, "a", "paused")
    assert not (config.gateway_dir / "routes.json").exists()


def test_concurrent_writers_each_get_their_own_generation(config):
    results = []

    def write(i):
        results.append(routes.set_route(config, f"f{i}", "running"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 21))
    assert len(table(config)["facilities"]) == 20


def test_damaged_table_never_restarts_below_the_applied_generation(config):
    routes.publish(config, {"a": "running"})
    config.gateway_run_dir.mkdir(parents=True)
    (config.gateway_run_dir / "applied.json").write_text('{"generation": 40}')
    (config.gateway_dir / "routes.json").write_text('{"version": 2, "genera')
    assert routes.set_route(config, "a", "asleep") == 41


def test_applied_generation_and_wait_applied(config):
    assert routes.applied_generation(config) is None
    config.gateway_run_dir.mkdir(parents=True)
    (config.gateway_run_dir / "applied.json").write_text('{"generation": 7}')
    assert routes.applied_generation(config) == 7
    assert routes.wait_applied(config, 7, timeout=0)
    assert routes.wait_applied(config, 5, timeout=0)
    now = [0.0]
    assert not routes.wait_applied(
        config, 8, timeout=1.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )


def test_wait_applied_sees_a_later_acknowledgement(config):
    config.gateway_run_dir.mkdir(parents=True)
    applied = config.gateway_run_dir / "applied.json"
    applied.write_text('{"generation": 1}')
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == 3:
            applied.write_text('{"generation": 2}')

    assert routes.wait_applied(config, 2, timeout=60, sleep=sleep)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "damage",
    [
        b'{"version": 2, "generation": 41, "facilities": {"a": {"sta',
        b"",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"version": 2, "generation": 41, "facilities": {"a": {"state": "gone"}}}',
    ],
    ids=["truncated", "empty", "not UTF-8", "nested", "malformed entry"],
)
def test_a_damaged_table_is_rebuilt_from_the_state_files_not_emptied(config, damage):
    # Changing one entry of a damaged file used to write a table of that one facility: every
    # other facility's patients would have got 404 from the gateway.
    state_file.save(config, "a", FacilityState())
    state_file.save(config, "b", FacilityState(asleep=True))
    state_file.save(config, "c", FacilityState(desired="stopped"))
    applied = routes.publish(config, {"a": "running", "b": "asleep", "c": "stopped"})
    config.gateway_run_dir.mkdir(parents=True, exist_ok=True)
    (config.gateway_run_dir / "applied.json").write_text(json.dumps({"generation": applied}))
    (config.gateway_dir / "routes.json").write_bytes(damage)
    generation = routes.set_route(config, "d", "running")
    assert table(config)["facilities"] == {
        "a": {"state": "asleep"},  # should run: its first request wakes it, which finds it up
        "b": {"state": "asleep"},
        "c": {"state": "stopped"},
        "d": {"state": "running"},
    }
    assert generation > applied  # never an acknowledgement the gateway already gave

"""list, show, stop, start, rotate-key and delete — and the truth after operators change things."""

import json

import pytest

from provisioner.host import state_file
from provisioner.host.state_file import FacilityState
from tests.provisioner.fakedocker import api_error


@pytest.fixture
def alpha(medcell):
    return medcell.json(
        "facility", "create", "alpha", "--name", "Praxis Alpha", "--retention", "3d"
    )


def routes(config) -> dict:
    return json.loads((config.home / "gateway" / "routes.json").read_text())["facilities"]


def test_list_shows_slug_name_and_status(medcell, alpha):
    medcell.json("facility", "create", "beta")
    assert medcell.json("facility", "list") == [
        {"slug": "alpha", "name": "Praxis Alpha", "status": "running"},
        {"slug": "beta", "name": "beta", "status": "running"},
    ]


def test_list_is_empty_without_facilities(medcell):
    assert medcell.json("facility", "list") == []
    assert medcell("facility", "list").stdout == "no facilities\n"


def test_list_ignores_other_installations(medcell, fake, alpha):
    fake.volumes.create("other-x-data", labels={"medcell.facility": "x", "medcell.role": "data",
                                                "medcell.instance": "other"})  # fmt: skip
    assert [f["slug"] for f in medcell.json("facility", "list")] == ["alpha"]


def test_show_reports_status_retention_created_container_volume(medcell, alpha):
    details = medcell.json("facility", "show", "alpha")
    assert details["status"] == "running"
    assert details["retention"] == "3d"
    assert details["created"].endswith("Z")
    assert details["container"] == "medcell-alpha"
    assert details["volume"] == "medcell-alpha-data"
    assert details["name"] == "Praxis Alpha"


def test_show_unknown_facility_fails(medcell):
    result = medcell("facility", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error: no facility nope\n"


def test_stop_and_start_keep_volumes_and_update_routes(medcell, fake, config, alpha):
    assert medcell.json("facility", "stop", "alpha") == {"slug": "alpha", "status": "stopped"}
    assert routes(config)["alpha"]["state"] == "stopped"
    assert "medcell-alpha-data" in fake.volumes_by_name
    assert medcell.json("facility", "start", "alpha") == {"slug": "alpha", "status": "running"}
    assert routes(config)["alpha"]["state"] == "running"


def test_list_tells_the_truth_after_docker_commands(medcell, fake, config, alpha):
    medcell.json("facility", "create", "beta")
    medcell.json("facility", "create", "gamma")
    fake.containers_by_name["medcell-alpha"].stop()  # docker stop: it should run, but does not
    state_file.save(config, "beta", FacilityState(health="unhealthy", error="probes failing"))
    fake.containers_by_name["medcell-gamma"].remove(force=True)  # docker rm -f
    status = {f["slug"]: f["status"] for f in medcell.json("facility", "list")}
    assert status == {"alpha": "unhealthy", "beta": "unhealthy", "gamma": "stopped"}


def test_restarting_container_is_unhealthy(medcell, fake, alpha):
    fake.containers_by_name["medcell-alpha"].status = "restarting"
    assert medcell.json("facility", "list")[0]["status"] == "unhealthy"


def test_start_recreates_a_container_removed_by_hand(medcell, fake, alpha):
    fake.containers_by_name["medcell-alpha"].remove(force=True)
    assert medcell.json("facility", "start", "alpha")["status"] == "running"
    container = fake.containers_by_name["medcell-alpha"]
    assert container.kwargs["environment"]["MEDCELL_RETENTION"] == "3d"
    assert container.kwargs["environment"]["MEDCELL_FACILITY_NAME"] == "Praxis Alpha"
    assert container.kwargs["read_only"] is True


def test_stop_is_remembered_as_the_operators_decision(medcell, fake, config, alpha):
    medcell.json("facility", "stop", "alpha")
    assert state_file.load(config, "alpha").desired == "stopped"
    assert medcell.json("facility", "show", "alpha")["status"] == "stopped"
    medcell.json("facility", "start", "alpha")
    assert state_file.load(config, "alpha").desired == "running"


def test_asleep_facility_is_listed_asleep_and_shows_its_wake_time(medcell, fake, config, alpha):
    fake.containers_by_name["medcell-alpha"].stop()
    state_file.save(config, "alpha", FacilityState(asleep=True, wake_at=1767225600.0))
    assert medcell.json("facility", "list")[0]["status"] == "asleep"
    details = medcell.json("facility", "show", "alpha")
    assert details["status"] == "asleep"
    assert details["wake_at"] == "2026-01-01T00:00:00Z"
    assert details["idle"] == "900s"


def test_failed_wake_is_unhealthy(medcell, fake, config, alpha):
    fake.containers_by_name["medcell-alpha"].stop()
    state_file.save(config, "alpha", FacilityState(asleep=True, health="unhealthy", error="x"))
    assert medcell.json("facility", "list")[0]["status"] == "unhealthy"


def test_start_wakes_an_asleep_facility(medcell, fake, config, alpha):
    fake.containers_by_name["medcell-alpha"].stop()
    state_file.save(config, "alpha", FacilityState(asleep=True, wake_at=2e9))
    routes_before = routes(config)
    assert medcell.json("facility", "start", "alpha")["status"] == "running"
    assert state_file.load(config, "alpha") == FacilityState()
    assert routes(config)["alpha"]["state"] == "running" and routes_before


def test_rotate_key_of_an_asleep_facility_wakes_it_first(medcell, fake, config, alpha, monkeypatch):
    from provisioner.host import lifecycle

    woken = []

    def wake(config, backend, slug, *, reason, timeout=None, **waiting):
        woken.append((slug, reason))
        fake.containers_by_name["medcell-alpha"].start()
        state_file.save(config, slug, FacilityState())

    monkeypatch.setattr(lifecycle, "wake", wake)
    fake.containers_by_name["medcell-alpha"].stop()
    state_file.save(config, "alpha", FacilityState(asleep=True))
    assert medcell.json("facility", "rotate-key", "alpha")["version"] == 2
    assert woken == [("alpha", "operator")]


def test_rotate_key_runs_in_the_facility(medcell, fake, alpha):
    out = medcell.json("facility", "rotate-key", "alpha")
    assert out == {"slug": "alpha", "version": 2, "rewrapped": 3, "destroyed": 0}
    assert fake.execs[-1] == ("medcell-alpha", ["python", "-m", "services.facility", "rotate-key"])


def test_rotate_key_of_stopped_facility_is_refused(medcell, alpha):
    medcell.json("facility", "stop", "alpha")
    result = medcell("facility", "rotate-key", "alpha")
    assert result.exit_code != 0
    assert "facility alpha is stopped; start it first" in result.stderr


def test_delete_needs_yes(medcell, fake, alpha):
    result = medcell("facility", "delete", "alpha")
    assert result.exit_code != 0
    assert "add --yes" in result.stderr
    assert "medcell-alpha" in fake.names()


def test_delete_shreds_keys_before_removing_anything(medcell, fake, alpha):
    removed_while_shredding = []
    app = fake.exec_handler

    def watch(container, cmd):
        if "shred-keys" in cmd:
            removed_while_shredding.append(set(fake.names()))
        return app(container, cmd)

    fake.exec_handler = watch
    medcell.json("facility", "delete", "alpha", "--yes")
    assert fake.shredded == ["medcell-alpha-keys"]
    assert {"medcell-alpha-keys", "medcell-alpha-data"} <= removed_while_shredding[0]


@pytest.mark.process
def test_delete_leaves_nothing_but_a_content_free_log_line(medcell, fake, config, alpha):
    medcell.json("up")
    out = medcell.json("facility", "delete", "alpha", "--yes")
    # The stand-in facility gives no wipe receipt (tests/provisioner/test_receipts.py: a real one).
    assert out == {
        "slug": "alpha",
        "deleted": True,
        "keys_destroyed": 1,
        "receipt": None,
        "receipt_key": None,
        "backup_keys_destroyed": 0,
    }
    assert fake.names() == {
        "medcell-gateway",
        "medcell-supervisor",
        "medcell-edge",
        "medcell-metrics",
    }
    assert "alpha" not in fake.containers_by_name["medcell-gateway"].networks
    assert routes(config) == {}
    files = [p for p in config.home.rglob("*") if p.is_file() and "alpha" in p.read_text()]
    assert [p.name for p in files] == ["deletions.log"]
    (line,) = (config.home / "deletions.log").read_text().splitlines()
    assert line.endswith(" deleted alpha")
    assert not list(config.home.rglob("*alpha*"))


def test_delete_of_stopped_facility_shreds_in_a_one_off_container(medcell, fake, alpha):
    medcell.json("facility", "stop", "alpha")
    medcell.json("facility", "delete", "alpha", "--yes")
    assert fake.shredded == ["medcell-alpha-keys"]
    one_off = fake.created[-1]
    assert one_off["network_mode"] == "none"
    assert one_off["read_only"] is True and one_off["cap_drop"] == ["ALL"]
    assert "restart_policy" not in one_off
    assert fake.names() == set()


def test_delete_refuses_to_remove_data_when_keys_cannot_be_destroyed(medcell, fake, alpha):
    medcell.json("facility", "stop", "alpha")
    fake.exec_handler = lambda c, cmd: (1, "", "Error: disk on fire")
    result = medcell("facility", "delete", "alpha", "--yes")
    assert result.exit_code != 0
    assert "nothing was removed" in result.stderr
    assert {"medcell-alpha-data", "medcell-alpha-keys"} <= fake.names()


def test_delete_cleans_up_a_half_removed_facility(medcell, fake, alpha):
    fake.containers_by_name["medcell-alpha"].remove(force=True)
    fake.volumes_by_name["medcell-alpha-data"].remove()
    fake.volumes_by_name["medcell-alpha-keys"].remove()
    medcell.json("facility", "delete", "alpha", "--yes")
    assert fake.names() == set()


def test_delete_unknown_facility_fails(medcell):
    result = medcell("facility", "delete", "nope", "--yes")
    assert result.exit_code != 0
    assert result.stderr == "Error: no facility nope\n"


def test_engine_errors_become_one_line(medcell, fake, alpha):
    fake.failures["start"] = api_error(500, "something\nwent wrong")
    medcell.json("facility", "stop", "alpha")
    result = medcell("facility", "start", "alpha")
    assert result.exit_code == 1
    assert result.stderr == "Error: starting container medcell-alpha: something went wrong\n"


def test_facility_lock_waits_when_asked(config):
    import threading

    from provisioner.host import locks
    from provisioner.host.errors import Busy

    held, release, released = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with locks.facility_lock(config, "alpha"):
            held.set()
            release.wait(5)
            released.set()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    with pytest.raises(Busy):
        with locks.facility_lock(config, "alpha"):
            pass
    threading.Timer(0.2, release.set).start()
    with locks.facility_lock(config, "alpha", wait=5):
        # The waiter got the lock only once the holder had let it go.
        assert released.is_set()
    thread.join()

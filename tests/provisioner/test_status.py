"""`medcell status`, `facility sleep|wake`, and listing many facilities cheaply."""

import pytest

from provisioner.host import lifecycle, state_file
from provisioner.host.facility_http import FacilityStatus
from provisioner.host.state_file import FacilityState


@pytest.mark.process
def test_status_counts_facilities_and_finds_the_next_deadline(medcell, fake, config):
    medcell.json("up")
    for slug in ("alpha", "beta", "gamma", "delta"):
        medcell.json("facility", "create", slug)
    fake.socket_status["alpha"] = FacilityStatus(0, 3, 10.0, False, 1767225600.0)
    fake.containers_by_name["medcell-beta"].stop()
    state_file.save(config, "beta", FacilityState(asleep=True, wake_at=1767222000.0))
    medcell.json("facility", "stop", "gamma")
    state_file.save(config, "delta", FacilityState(health="unhealthy", error="probes failing"))
    out = medcell.json("status")
    assert out["gateway"] == "running" and out["supervisor"] == "running"
    assert out["facilities"] == {
        "total": 4, "running": 1, "asleep": 1, "stopped": 1, "unhealthy": 1,
    }  # fmt: skip
    assert out["unhealthy"] == [{"slug": "delta", "error": "probes failing"}]
    assert out["next_deadline"] == "2025-12-31T23:00:00Z"  # beta wakes before alpha's deadline
    assert out["next_deadline_facility"] == "beta"
    text = medcell("status").stdout
    assert "1 running, 1 asleep, 1 stopped, 1 unhealthy" in text


@pytest.mark.process
def test_status_shows_awake_facilities_against_the_cap(medcell, fake, config):
    medcell.json("up")
    for slug in ("alpha", "beta"):
        medcell.json("facility", "create", slug)
    fake.containers_by_name["medcell-beta"].stop()
    state_file.save(config, "beta", FacilityState(asleep=True))
    out = medcell.json("status")
    assert out["awake"] == 1 and out["max_awake"] == config.max_awake
    assert f"awake:      1 of at most {config.max_awake}" in medcell("status").stdout


def test_status_of_an_empty_installation(medcell):
    out = medcell.json("status")
    assert out["gateway"] == "stopped" and out["supervisor"] == "stopped"
    assert out["facilities"]["total"] == 0 and out["next_deadline"] is None


def test_sleep_and_wake_call_the_shared_lifecycle(medcell, monkeypatch, fake):
    calls = []
    monkeypatch.setattr(
        lifecycle,
        "put_to_sleep",
        lambda c, b, slug, require_idle, **waiting: calls.append(("sleep", slug)),
    )
    monkeypatch.setattr(
        lifecycle,
        "wake",
        lambda c, b, slug, reason, **waiting: calls.append(("wake", slug, reason)),
    )
    medcell.json("facility", "create", "alpha")
    assert medcell.json("facility", "sleep", "alpha")["slug"] == "alpha"
    assert medcell.json("facility", "wake", "alpha")["status"] == "running"
    assert calls == [("sleep", "alpha"), ("wake", "alpha", "operator")]


@pytest.mark.parametrize("command", ["sleep", "wake"])
@pytest.mark.parametrize("slug", ["nope", "Bad_Slug"])
def test_unknown_or_bad_slug_never_wakes_or_sleeps_anything(medcell, monkeypatch, command, slug):
    touched = []
    monkeypatch.setattr(lifecycle, "put_to_sleep", lambda *a, **k: touched.append(a))
    monkeypatch.setattr(lifecycle, "wake", lambda *a, **k: touched.append(a))
    result = medcell("facility", command, slug)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert touched == []


def test_list_uses_one_container_listing_not_one_inspect_each(medcell, fake):
    for i in range(30):
        medcell.json("facility", "create", f"f{i}")
    fake.inspects = fake.lists = 0
    rows = medcell.json("facility", "list")
    assert len(rows) == 30 and {r["status"] for r in rows} == {"running"}
    assert fake.lists == 1 and fake.inspects == 0

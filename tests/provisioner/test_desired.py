"""Per-facility state files: defaults, round trip, damaged files, listing."""

import os
import stat

import pytest

from provisioner.host import state_file
from provisioner.host.config import Config
from provisioner.host.state_file import FacilityState


def test_missing_file_gives_defaults(config):
    assert state_file.load(config, "alpha") == FacilityState()


def test_save_and_load_round_trip_private(config):
    st = FacilityState(desired="stopped", idle=0, asleep=True, wake_at=1700000000.5,
                       slept_at=1699990000.0, health="unhealthy", error="wake failed")  # fmt: skip
    state_file.save(config, "alpha", st)
    assert state_file.load(config, "alpha") == st
    mode = stat.S_IMODE(os.stat(config.state_dir / "alpha.json").st_mode)
    assert mode == 0o600


def test_damaged_file_gives_defaults(config):
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "alpha.json").write_text('{"desired": "stopp')
    assert state_file.load(config, "alpha") == FacilityState()


def test_bad_fields_are_dropped_one_by_one(config):
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "alpha.json").write_text(
        '{"desired": "paused", "idle": -5, "asleep": true, "wake_at": "soon", "health": "ok"}'
    )
    # An unreadable wake-up time is not "none": the sleeping facility is woken and asked.
    assert state_file.load(config, "alpha") == FacilityState(
        asleep=True, wake_at=state_file.UNKNOWN_DEADLINE
    )


def test_nan_or_infinity_on_disk_spoils_only_its_field_and_means_wake_soon(config):
    config.state_dir.mkdir(parents=True)
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        (config.state_dir / "alpha.json").write_text(
            f'{{"desired": "stopped", "asleep": true, "wake_at": {bad}, "slept_at": {bad}}}'
        )
        assert state_file.load(config, "alpha") == FacilityState(
            desired="stopped", asleep=True, wake_at=state_file.UNKNOWN_DEADLINE, slept_at=None
        )


def test_state_files_never_hold_nan(config):
    with pytest.raises(ValueError):
        state_file.save(config, "alpha", FacilityState(wake_at=float("nan")))
    assert state_file.load(config, "alpha") == FacilityState()


def test_load_all_lists_slugs_and_skips_other_files(config):
    state_file.save(config, "alpha", FacilityState())
    state_file.save(config, "beta", FacilityState(desired="stopped"))
    (config.state_dir / ".beta.json.tmp123").write_text("{}")
    (config.state_dir / "NOT A SLUG.json").write_text("{}")
    assert set(state_file.load_all(config)) == {"alpha", "beta"}
    assert state_file.load_all(config)["beta"].desired == "stopped"


def test_remove_forgets_the_facility(config):
    state_file.save(config, "alpha", FacilityState())
    state_file.remove(config, "alpha")
    state_file.remove(config, "alpha")  # twice is fine
    assert state_file.load_all(config) == {}


def test_idle_timeout_falls_back_to_the_installation(tmp_path):
    config = Config(home=tmp_path, idle_timeout=600)
    assert FacilityState().idle_timeout(config) == 600
    assert FacilityState(idle=0).idle_timeout(config) == 0
    assert FacilityState(idle=60).idle_timeout(config) == 60

"""Per-facility state files: defaults, round trip, damaged files, listing."""

import os
import stat

import pytest

from provisioner import desired
from provisioner.config import Config
from provisioner.desired import FacilityState


def test_missing_file_gives_defaults(config):
    assert desired.load(config, "alpha") == FacilityState()


def test_save_and_load_round_trip_private(config):
    st = FacilityState(desired="stopped", idle=0, asleep=True, wake_at=1700000000.5,
                       slept_at=1699990000.0, health="unhealthy", error="wake failed")  # fmt: skip
    desired.save(config, "alpha", st)
    assert desired.load(config, "alpha") == st
    mode = stat.S_IMODE(os.stat(config.state_dir / "alpha.json").st_mode)
    assert mode == 0o600


def test_damaged_file_gives_defaults(config):
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "alpha.json").write_text('{"desired": "stopp')
    assert desired.load(config, "alpha") == FacilityState()


def test_bad_fields_are_dropped_one_by_one(config):
    config.state_dir.mkdir(parents=True)
    (config.state_dir / "alpha.json").write_text(
        '{"desired": "paused", "idle": -5, "asleep": true, "wake_at": "soon", "health": "ok"}'
    )
    # An unreadable wake-up time is not "none": the sleeping facility is woken and asked.
    assert desired.load(config, "alpha") == FacilityState(
        asleep=True, wake_at=desired.UNKNOWN_DEADLINE
    )


def test_nan_or_infinity_on_disk_spoils_only_its_field_and_means_wake_soon(config):
    config.state_dir.mkdir(parents=True)
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        (config.state_dir / "alpha.json").write_text(
            f'{{"desired": "stopped", "asleep": true, "wake_at": {bad}, "slept_at": {bad}}}'
        )
        assert desired.load(config, "alpha") == FacilityState(
            desired="stopped", asleep=True, wake_at=desired.UNKNOWN_DEADLINE, slept_at=None
        )


def test_state_files_never_hold_nan(config):
    with pytest.raises(ValueError):
        desired.save(config, "alpha", FacilityState(wake_at=float("nan")))
    assert desired.load(config, "alpha") == FacilityState()


def test_load_all_lists_slugs_and_skips_other_files(config):
    desired.save(config, "alpha", FacilityState())
    desired.save(config, "beta", FacilityState(desired="stopped"))
    (config.state_dir / ".beta.json.tmp123").write_text("{}")
    (config.state_dir / "NOT A SLUG.json").write_text("{}")
    assert set(desired.load_all(config)) == {"alpha", "beta"}
    assert desired.load_all(config)["beta"].desired == "stopped"


def test_remove_forgets_the_facility(config):
    desired.save(config, "alpha", FacilityState())
    desired.remove(config, "alpha")
    desired.remove(config, "alpha")  # twice is fine
    assert desired.load_all(config) == {}


def test_idle_timeout_falls_back_to_the_installation(tmp_path):
    config = Config(home=tmp_path, idle_timeout=600)
    assert FacilityState().idle_timeout(config) == 600
    assert FacilityState(idle=0).idle_timeout(config) == 0
    assert FacilityState(idle=60).idle_timeout(config) == 60

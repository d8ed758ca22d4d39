"""`medcell up --refresh`: security updates into every image, and through the upgrade everywhere."""

import pytest

from provisioner.host import state_file
from provisioner.host.errors import ImageBuildFailed
from provisioner.host.state_file import FacilityState

OLD_BASE = "2026-11-02T06:00:00Z"
NEW_BASE = "2026-12-05T07:00:00Z"


@pytest.fixture
def refreshes(runtime, fake, config) -> list[str]:
    """Records refreshes; a refresh gives every image a new id on a base built today."""
    done: list[str] = []
    images = (config.facility_image, config.gateway_image, config.supervisor_image)
    for image in images:
        fake.image_labels[image] = {"medcell.base.built": OLD_BASE}

    def refresh(progress):
        done.append("refresh")
        for image in images:
            fake.image_ids[image] = f"sha256:refreshed-{image.split(':')[0]}"
            fake.image_labels[image] = {"medcell.base.built": NEW_BASE}

    runtime.stack.refresh = refresh
    return done


@pytest.fixture
def installation(medcell, fake, config, refreshes):
    """Gateway and supervisor up; alpha awake, beta asleep, gamma stopped by the operator."""
    medcell.json("up")
    for slug in ("alpha", "beta", "gamma"):
        medcell.json("facility", "create", slug)
    fake.containers_by_name["medcell-beta"].stop()
    state_file.save(config, "beta", FacilityState(asleep=True, wake_at=1767222000.0))
    medcell.json("facility", "stop", "gamma")
    return {name: c.id for name, c in fake.containers_by_name.items()}


@pytest.mark.process
def test_up_without_refresh_rebuilds_and_recreates_nothing(medcell, fake, installation, refreshes):
    out = medcell.json("up")
    assert refreshes == []
    assert out["repaired"] == [] and "refreshed" not in out
    assert {name: c.id for name, c in fake.containers_by_name.items()} == installation


@pytest.mark.process
def test_refresh_rebuilds_the_images_and_upgrades_every_container(
    medcell, fake, installation, refreshes
):
    out = medcell.json("up", "--refresh")
    assert refreshes == ["refresh"]
    for slug in ("alpha", "beta", "gamma"):
        assert f"upgraded medcell-{slug}" in out["repaired"]
        container = fake.containers_by_name[f"medcell-{slug}"]
        assert container.kwargs["labels"]["medcell.image"] == "sha256:refreshed-medcell-facility"
        assert f"medcell-{slug}-data" in fake.volumes_by_name
    for name in ("medcell-gateway", "medcell-supervisor"):
        assert f"recreated {name} for new settings or image" in out["repaired"]
        assert fake.containers_by_name[name].id != installation[name]
        assert fake.containers_by_name[name].status == "running"
    # Each facility keeps its state: awake runs, asleep and stopped stay so on the new image.
    assert fake.containers_by_name["medcell-alpha"].status == "running"
    assert fake.containers_by_name["medcell-beta"].status != "running"
    assert fake.containers_by_name["medcell-gamma"].status != "running"
    assert out["refreshed"]["medcell-facility:latest"] == {
        "id": "sha256:refreshed-medcell-facility",
        "base_built": NEW_BASE,
    }
    assert set(out["refreshed"]) == {
        "medcell-facility:latest", "medcell-gateway:latest", "medcell-supervisor:latest",
    }  # fmt: skip


@pytest.mark.process
def test_refresh_says_what_it_rebuilt_and_upgraded(medcell, installation):
    result = medcell("up", "--refresh")
    assert result.exit_code == 0, result.output
    assert "upgraded medcell-alpha" in result.stdout
    assert f"rebuilt medcell-facility:latest on Debian packages of {NEW_BASE}" in result.stdout


@pytest.mark.process
def test_a_failed_refresh_is_an_error_and_touches_no_container(
    runtime, medcell, fake, installation
):
    def fail(progress):
        raise ImageBuildFailed("building the images failed (exit code 1)")

    runtime.stack.refresh = fail
    result = medcell("up", "--refresh")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: building the images failed (exit code 1)"
    )
    assert {name: c.id for name, c in fake.containers_by_name.items()} == installation
    assert fake.containers_by_name["medcell-alpha"].status == "running"


@pytest.mark.process
def test_status_shows_how_old_the_packages_under_the_images_are(medcell, fake, installation):
    fake.image_labels["medcell-gateway:latest"] = {"medcell.base.built": "2026-10-01T00:00:00Z"}
    assert medcell.json("status")["base_built"] == "2026-10-01T00:00:00Z"  # the oldest one
    assert "images:     Debian packages of 2026-10-01T00:00:00Z" in medcell("status").stdout
    medcell.json("up", "--refresh")
    assert medcell.json("status")["base_built"] == NEW_BASE


def test_status_of_images_without_the_label(medcell, fake):
    assert medcell.json("status")["base_built"] is None
    assert "images:     Debian packages of unknown date" in medcell("status").stdout

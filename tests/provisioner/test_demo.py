"""`python -m provisioner.cli.demo`: the demo facility and its login, again on every `make run`."""

import stat

from provisioner.cli.demo import ensure_demo


def test_demo_is_created_once_and_its_login_shown_again(runtime, fake, config):
    first = ensure_demo(runtime.facilities)
    second = ensure_demo(runtime.facilities)
    login = {"url": "https://demo.localhost:8443/", "username": "admin"}
    assert first == second == {**login, "password": fake.passwords[0]}
    assert len(fake.passwords) == 1
    credentials = config.home / "demo-credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_stopped_demo_is_started(runtime, fake):
    ensure_demo(runtime.facilities)
    runtime.facilities.stop("demo")
    ensure_demo(runtime.facilities)
    assert fake.containers_by_name["medcell-demo"].status == "running"


def test_demo_without_stored_login_says_so(runtime, config):
    runtime.facilities.create("demo")
    assert ensure_demo(runtime.facilities)["password"] is None


def test_demo_facility_has_a_german_name_that_survives_intact(runtime, fake):
    ensure_demo(runtime.facilities)
    listed = {f["slug"]: f["name"] for f in runtime.facilities.list()}
    assert listed["demo"] == "Praxis Dr. Müller"
    env = fake.containers_by_name["medcell-demo"].kwargs["environment"]
    assert env["MEDCELL_FACILITY_NAME"] == "Praxis Dr. Müller"

"""`medcell facility create`: what it makes, what it prints, and what it leaves after a failure."""

import json

import pytest

from provisioner.host import locks, state_file
from provisioner.host.errors import Busy, ProvisionerError
from provisioner.host.specs import FACILITY_SECCOMP
from provisioner.host.state_file import FacilityState
from tests.provisioner.fakedocker import api_error

HARDENING = {
    "user": "10001:10001",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true", f"seccomp={FACILITY_SECCOMP}"],
    "restart_policy": {"Name": "unless-stopped"},
    "network_mode": "none",
    "healthcheck": {"test": ["NONE"]},
}


def test_create_prints_login_once_as_json(medcell, fake):
    out = medcell.json("facility", "create", "alpha", "--name", "Praxis Alpha")
    assert out == {
        "slug": "alpha",
        "url": "https://alpha.localhost:8443/",
        "admin_user": "admin",
        "admin_password": fake.passwords[0],
    }


def test_create_makes_container_and_volumes_with_contract_names_and_no_network(medcell, fake):
    medcell.json("facility", "create", "alpha")
    assert fake.names() == {"medcell-alpha", "medcell-alpha-data", "medcell-alpha-keys"}
    assert fake.networks_by_name == {}
    assert fake.containers_by_name["medcell-alpha"].image == "medcell-facility:latest"


def test_create_makes_socket_dir_and_state_file(medcell, config):
    medcell.json("facility", "create", "alpha", "--idle", "30m")
    socket_dir = config.home / "run" / "facilities" / "alpha"
    assert socket_dir.is_dir()
    assert state_file.load(config, "alpha") == FacilityState(desired="running", idle=1800)
    assert medcell.json("facility", "show", "alpha")["idle"] == "1800s"


def test_create_idle_never_is_stored_on_the_data_volume_too(medcell, fake, config):
    medcell.json("facility", "create", "alpha", "--idle", "never")
    assert state_file.load(config, "alpha").idle == 0
    assert fake.volumes_by_name["medcell-alpha-data"].attrs["Labels"]["medcell.idle"] == "never"
    assert medcell.json("facility", "show", "alpha")["idle"] == "never"


@pytest.mark.parametrize("idle", ["0s", "soon", "15"])
def test_create_with_bad_idle_is_refused_before_anything_is_made(medcell, fake, config, idle):
    result = medcell("facility", "create", "alpha", "--idle", idle)
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: ")
    assert fake.names() == set()
    assert not (config.home / "facilities").exists()


def test_every_object_carries_the_facility_label(medcell, fake):
    medcell.json("facility", "create", "alpha")
    labelled = [c.labels for c in fake.containers_by_name.values()]
    labelled += [v.attrs["Labels"] for v in fake.volumes_by_name.values()]
    assert len(labelled) == 3
    for labels in labelled:
        assert labels["medcell.facility"] == "alpha"
        assert labels["medcell.instance"] == "medcell"


def test_facility_container_is_hardened(medcell, fake, config):
    medcell.json("facility", "create", "alpha")
    kwargs = fake.containers_by_name["medcell-alpha"].kwargs
    for key, value in HARDENING.items():
        assert kwargs[key] == value, key
    assert "noexec" in kwargs["tmpfs"]["/tmp"]
    assert kwargs["mem_limit"] and kwargs["nano_cpus"] and kwargs["pids_limit"]
    assert kwargs["ports"] == {}
    assert kwargs["volumes"] == {
        "medcell-alpha-data": {"bind": "/data", "mode": "rw"},
        "medcell-alpha-keys": {"bind": "/keys", "mode": "rw"},
        str(config.home / "run/facilities/alpha"): {"bind": "/run/medcell", "mode": "rw"},
    }
    assert "network" not in kwargs
    for forbidden in ("privileged", "pid_mode", "ipc_mode", "cap_add", "devices"):
        assert forbidden not in kwargs


def test_no_secret_in_environment_labels_or_home(medcell, fake, config):
    out = medcell.json("facility", "create", "alpha", "--retention", "12h")
    kwargs = fake.containers_by_name["medcell-alpha"].kwargs
    assert kwargs["environment"] == {
        "MEDCELL_FACILITY": "alpha",
        "MEDCELL_FACILITY_NAME": "alpha",
        "MEDCELL_RETENTION": "12h",
        "MEDCELL_BIND": "unix:/run/medcell/app.sock",
        "MEDCELL_PUBLIC_URL": "https://alpha.localhost:8443/",
        "MEDCELL_TOMBSTONE_DIR": "/run/medcell/tombstones",
        "MEDCELL_TIMEZONE": "Europe/Berlin",
    }
    dumped = json.dumps([kwargs, [v.attrs for v in fake.volumes_by_name.values()]])
    assert out["admin_password"] not in dumped
    for path in config.home.rglob("*"):
        if path.is_file():
            assert out["admin_password"] not in path.read_text()


def test_create_writes_routes_for_the_gateway(medcell, config):
    medcell.json("facility", "create", "alpha")
    routes = json.loads((config.home / "gateway" / "routes.json").read_text())
    assert routes["version"] == 2
    assert routes["facilities"] == {"alpha": {"state": "running"}}


def test_create_existing_slug_is_refused_and_changes_nothing(medcell, fake):
    medcell.json("facility", "create", "alpha")
    before = fake.names()
    result = medcell("facility", "create", "alpha")
    assert result.exit_code != 0
    assert result.stderr == "Error: facility alpha already exists\n"
    assert fake.names() == before


def test_create_while_another_holds_the_lock_gives_up_after_its_wait(
    medcell, fake, config, runtime
):
    runtime.facilities.lock_wait = 0.2
    with locks.facility_lock(config, "alpha"):
        result = medcell("facility", "create", "alpha")
    assert result.exit_code != 0
    assert "Error: facility alpha is still held by " in result.stderr
    assert fake.names() == set()


@pytest.mark.parametrize(
    "step",
    ["create_container", "start"],
)
def test_engine_failure_half_way_removes_everything(medcell, fake, config, step):
    fake.failures[step] = api_error(500, "engine exploded")
    result = medcell("facility", "create", "alpha")
    assert result.exit_code != 0
    assert "engine exploded" in result.stderr
    assert fake.names() == set()
    assert not (config.home / "locks" / "alpha.lock").exists()
    routes = json.loads((config.home / "gateway" / "routes.json").read_text())
    assert routes["facilities"] == {}


def test_app_that_never_answers_is_rolled_back(medcell, fake, config):
    fake.health_on_start = "unhealthy"
    result = medcell("facility", "create", "alpha")
    assert result.exit_code != 0
    assert "not healthy after 90s" in result.stderr
    assert fake.names() == set()
    assert not (config.home / "run/facilities/alpha").exists()
    assert state_file.load_all(config) == {}


def test_container_that_exits_fails_early_and_is_rolled_back(runtime, fake, clock):
    fake.health_on_start = "starting"
    original = fake.containers.create

    def create(image, command=None, **kwargs):
        container = original(image, command, **kwargs)
        container.start = lambda: setattr(container, "status", "exited")
        return container

    fake.containers.create = create
    started = clock()
    with pytest.raises(Exception, match="failed to start"):
        runtime.facilities.create("alpha")
    assert clock() - started < 5
    assert fake.names() == set()


def test_health_timeout_is_rolled_back(runtime, fake):
    fake.health_on_start = "starting"
    clock = iter(range(0, 10_000, 10))
    runtime.facilities.clock = lambda: next(clock)
    with pytest.raises(Exception, match="not healthy after 90s"):
        runtime.facilities.create("alpha")
    assert fake.names() == set()


def test_failed_create_admin_is_rolled_back_without_echoing_stdout(medcell, fake):
    fake.exec_handler = lambda c, cmd: (1, "password=leak", "Error: staff exists")
    result = medcell("facility", "create", "alpha")
    assert result.exit_code != 0
    assert result.stderr == (
        "Error: create-admin in medcell-alpha failed (exit code 1): staff exists\n"
    )
    assert "leak" not in result.output
    assert fake.names() == set()


def test_missing_image_is_refused_before_anything_is_made(medcell, fake):
    fake.images_present.clear()
    result = medcell("facility", "create", "alpha")
    assert "image medcell-facility:latest is missing" in result.stderr
    assert fake.names() == set()


@pytest.mark.process
def test_create_attaches_nothing_to_a_running_gateway(medcell, fake):
    medcell.json("up")
    medcell.json("facility", "create", "alpha")
    assert fake.containers_by_name["medcell-gateway"].networks == {"medcell-edge"}


def test_every_refusal_is_a_provisioner_error():
    assert issubclass(Busy, ProvisionerError)


def test_create_asks_the_socket_not_docker_exec_for_health(runtime, fake):
    runtime.facilities.create("alpha")
    assert [cmd[3] for _, cmd in fake.execs] == ["create-admin"]


def test_create_admin_is_retried_once_after_a_container_restart(runtime, fake):
    calls = []

    def app(container, cmd):
        if "create-admin" in cmd:
            calls.append(cmd)
            if len(calls) == 1:
                return 137, "", ""  # the container restarted under the command
        return fake.facility_app(container, cmd)

    fake.exec_handler = app
    assert runtime.facilities.create("alpha")["admin_password"] == fake.passwords[0]
    assert len(calls) == 2


def test_crash_looping_container_is_rolled_back(medcell, fake):
    original = fake.containers.create

    def create(image, command=None, **kwargs):
        container = original(image, command, **kwargs)
        container.start = lambda: setattr(container, "status", "exited")
        return container

    fake.containers.create = create
    result = medcell("facility", "create", "alpha")
    assert "failed to start (exited" in result.stderr
    assert fake.names() == set()

"""The contract's rules for slugs, durations and settings, through the CLI and the library."""

import pytest

from provisioner.host.config import Config, default_max_awake
from provisioner.host.errors import InvalidArgument
from provisioner.host.validation import check_retention, check_slug, parse_duration

GOOD_SLUGS = ["a", "0", "praxis-mueller", "a1", "x" * 32, "a-b-c"]
BAD_SLUGS = ["", "-a", "a-", "A", "praxis_mueller", "x" * 33, "a b", "ä", "a.b", "../x", "a\n"]


@pytest.mark.parametrize("slug", GOOD_SLUGS)
def test_contract_slugs_are_accepted(slug):
    assert check_slug(slug) == slug


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_other_slugs_are_refused(slug):
    with pytest.raises(InvalidArgument, match="invalid slug"):
        check_slug(slug)


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("12h", 43200), ("7d", 604800), ("5m", 300)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "7", "d", "7w", "1.5d", "-1d", " 7d", "7D", "7 d", "07d", "7d\n"]
)
def test_malformed_durations_are_refused(text):
    with pytest.raises(InvalidArgument, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["8d", "169h", "604801s", "10081m"])
def test_retention_over_seven_days_is_refused(text):
    with pytest.raises(InvalidArgument, match="longer than 7d"):
        check_retention(text)


def test_zero_retention_is_refused():
    with pytest.raises(InvalidArgument):
        check_retention("0s")


@pytest.mark.parametrize("slug", ["Bad", "-x", "x" * 33])
def test_cli_refuses_bad_slug_without_touching_docker(medcell, fake, slug):
    result = medcell("facility", "create", "--json", "--", slug)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.startswith("Error: invalid slug")
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake.names() == set()


def test_cli_refuses_long_retention(medcell, fake):
    result = medcell("facility", "create", "alpha", "--retention", "8d")
    assert result.exit_code != 0
    assert "Error: retention 8d is longer than 7d" in result.stderr
    assert fake.names() == set()


@pytest.mark.parametrize("retention", ["07d", "0s", "7d\n"])
def test_cli_refuses_a_retention_the_facility_would_refuse(medcell, fake, retention):
    # The facility's rule (no leading zeros, no trailing newline) is the CLI's: nothing is created.
    result = medcell("facility", "create", "alpha", "--retention", retention)
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: invalid duration")
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake.names() == set()


def test_settings_come_from_the_environment(tmp_path):
    env = {
        "MEDCELL_HOME": str(tmp_path),
        "MEDCELL_GATEWAY_PORT": "9443",
        "MEDCELL_DOCKER_PREFIX": "mctest1",
        "MEDCELL_SUBNET_POOL": "10.99.0.0/24",
    }
    config = Config.from_env(env)
    assert config.home == tmp_path
    assert config.gateway_port == 9443
    assert config.facility("x").container == "mctest1-x"
    assert config.facility_url("x") == "https://x.localhost:9443/"


def test_each_facility_gets_its_own_origin_under_the_domain(tmp_path):
    config = Config.from_env({"MEDCELL_HOME": str(tmp_path), "MEDCELL_DOMAIN": "Praxen.Example."})
    assert config.facility_url("sonne") == "https://sonne.praxen.example:8443/"
    config = Config.from_env({"MEDCELL_HOME": str(tmp_path), "MEDCELL_GATEWAY_PORT": "443"})
    assert config.facility_url("sonne") == "https://sonne.localhost/"


@pytest.mark.parametrize("domain", ["exa mple.org", "evil.example/x", "a..b", "x_y.example"])
def test_a_domain_that_is_no_host_name_is_refused(tmp_path, domain):
    with pytest.raises(InvalidArgument, match="MEDCELL_DOMAIN"):
        Config.from_env({"MEDCELL_HOME": str(tmp_path), "MEDCELL_DOMAIN": domain})


def test_defaults_follow_the_contract(tmp_path):
    config = Config.from_env({"HOME": str(tmp_path)})
    names = config.facility("praxis")
    # A facility has no network at all (the contract's "if it has one"), so it has no name for one.
    assert (names.container, names.data_volume) == ("medcell-praxis", "medcell-praxis-data")
    assert config.gateway_container == "medcell-gateway"
    assert config.gateway_port == 8443


@pytest.mark.parametrize(
    "env",
    [
        {"MEDCELL_GATEWAY_PORT": "http"},
        {"MEDCELL_GATEWAY_PORT": "70000"},
        {"MEDCELL_SUBNET_POOL": "10.0.0.0/30"},
        {"MEDCELL_SUBNET_POOL": "nonsense"},
        {"MEDCELL_DOCKER_PREFIX": "Bad Prefix"},
        {"MEDCELL_TLS_CERT": "/x/cert.pem"},
    ],
)
def test_bad_settings_are_refused(env):
    with pytest.raises(InvalidArgument):
        Config.from_env(env)


@pytest.mark.parametrize("slug", ["gateway", "edge", "supervisor", "praxis-shred"])
def test_slugs_that_would_take_medcells_own_object_names_are_refused(slug):
    with pytest.raises(InvalidArgument, match="reserved"):
        check_slug(slug)


def test_idle_timeout_default_never_and_refusals(tmp_path):
    home = {"MEDCELL_HOME": str(tmp_path)}
    assert Config.from_env(home).idle_timeout == 900
    assert Config.from_env({**home, "MEDCELL_IDLE_TIMEOUT": "never"}).idle_timeout == 0
    assert Config.from_env({**home, "MEDCELL_IDLE_TIMEOUT": "30s"}).idle_timeout == 30
    for bad in ("0s", "15", "soon"):
        with pytest.raises(InvalidArgument, match="MEDCELL_IDLE_TIMEOUT"):
            Config.from_env({**home, "MEDCELL_IDLE_TIMEOUT": bad})


def test_run_paths_and_supervisor_names(tmp_path):
    config = Config.from_env({"MEDCELL_HOME": str(tmp_path), "MEDCELL_IMAGE_TAG": "v2"})
    assert config.facility_socket("alpha") == tmp_path / "run/facilities/alpha/app.sock"
    assert config.supervisor_socket == tmp_path / "run/supervisor/wake.sock"
    assert config.gateway_run_dir == tmp_path / "run/gateway"
    assert config.state_dir == tmp_path / "facilities"
    assert config.supervisor_container == "medcell-supervisor"
    assert config.supervisor_image == "medcell-supervisor:v2"


def test_awake_cap_comes_from_host_memory_unless_set(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683664 kB\nMemFree:  1 kB\n")
    # 24 GB less the 2 GiB the host keeps, at 64 MiB per awake facility.
    assert default_max_awake(meminfo) == (24683664 * 1024 - 2 * 1024**3) // (64 * 1024**2)
    meminfo.write_text("MemTotal:       1024 kB\n")
    assert default_max_awake(meminfo) == 4  # a tiny host still wakes a few
    home = {"MEDCELL_HOME": str(tmp_path)}
    assert Config.from_env({**home, "MEDCELL_MAX_AWAKE": "25"}).max_awake == 25
    for bad in ("0", "-3", "many"):
        with pytest.raises(InvalidArgument, match="MEDCELL_MAX_AWAKE"):
            Config.from_env({**home, "MEDCELL_MAX_AWAKE": bad})


def test_wake_budget_settings_and_refusals(tmp_path):
    home = {"MEDCELL_HOME": str(tmp_path)}
    config = Config.from_env(home)
    assert (config.wake_budget, config.wake_budget_window) == (20, 600)
    config = Config.from_env(
        {**home, "MEDCELL_WAKE_BUDGET": "0", "MEDCELL_WAKE_BUDGET_WINDOW": "1h"}
    )
    assert (config.wake_budget, config.wake_budget_window) == (0, 3600)
    for name, bad in (("MEDCELL_WAKE_BUDGET", "ten"), ("MEDCELL_WAKE_BUDGET_WINDOW", "0s")):
        with pytest.raises(InvalidArgument, match=name):
            Config.from_env({**home, name: bad})

"""`medcell up` and `down`: images, the gateway container, TLS, routes, and repair."""

import dataclasses
import json
import os
import stat
import subprocess

import pytest

from provisioner.cli import tls
from provisioner.host import state_file
from provisioner.host.config import Config
from provisioner.host.state_file import FacilityState


@pytest.mark.process
def test_up_builds_missing_images_then_starts_gateway(medcell, fake, builds):
    fake.images_present.clear()
    out = medcell.json("up")
    assert builds == ["build"]
    assert out["url"] == "https://localhost:8443/"
    assert out["status"] == "running"
    assert fake.containers_by_name["medcell-gateway"].status == "running"


@pytest.mark.process
def test_up_does_not_rebuild_present_images(medcell, builds):
    medcell.json("up")
    assert builds == []


@pytest.mark.process
def test_gateway_is_hardened_publishes_ports_and_mounts_config_read_only(medcell, fake, config):
    medcell.json("up")
    kwargs = fake.containers_by_name["medcell-gateway"].kwargs
    assert kwargs["labels"]["medcell.role"] == "gateway"
    assert kwargs["ports"] == {"8443/tcp": 8443, "8080/tcp": 8080}
    run = config.home / "run"
    assert kwargs["volumes"] == {
        str(config.home / "gateway"): {"bind": "/etc/medcell-gateway", "mode": "ro"},
        str(run / "facilities"): {"bind": "/run/medcell/facilities", "mode": "ro"},
        str(run / "supervisor"): {"bind": "/run/medcell/supervisor", "mode": "ro"},
        str(run / "gateway"): {"bind": "/run/medcell/gateway", "mode": "rw"},
    }
    assert not any("docker.sock" in host for host in kwargs["volumes"])
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"}
    assert kwargs["read_only"] and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["user"] == "10001:10001"
    assert not fake.networks_by_name["medcell-edge"].internal


@pytest.mark.process
def test_supervisor_is_hardened_and_holds_the_docker_socket(medcell, fake, config):
    out = medcell.json("up")
    assert out["supervisor"] == "running"
    kwargs = fake.containers_by_name["medcell-supervisor"].kwargs
    assert kwargs["labels"]["medcell.role"] == "supervisor"
    assert kwargs["volumes"] == {
        "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(config.home): {"bind": "/medcell", "mode": "rw"},
    }
    assert kwargs["user"] == "1000:1000" and kwargs["group_add"] == ["998"]
    # Its own network, only to publish its metrics (no route out, nobody else on it).
    assert kwargs["network"] == "medcell-metrics" and "network_mode" not in kwargs
    network = fake.networks_by_name["medcell-metrics"]
    assert network.members == {"medcell-supervisor"}
    assert network.options == {
        "com.docker.network.bridge.enable_icc": "false",
        "com.docker.network.bridge.enable_ip_masquerade": "false",
    }
    assert kwargs["read_only"] and kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["mem_limit"] == "128m"
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"}
    assert kwargs["ports"] == {"9464/tcp": ("127.0.0.1", 9464)}
    assert kwargs["environment"] == {
        "MEDCELL_HOME": "/medcell",
        "MEDCELL_HOST_HOME": str(config.home),
        "MEDCELL_DOCKER_PREFIX": "medcell",
        "MEDCELL_IDLE_TIMEOUT": "900s",
        "MEDCELL_IMAGE_TAG": "latest",
        "MEDCELL_HEALTH_TIMEOUT": "90",
        "MEDCELL_DOMAIN": "localhost",
        "MEDCELL_GATEWAY_PORT": "8443",
        "MEDCELL_MAX_AWAKE": str(config.max_awake),
        "MEDCELL_TIMEZONE": "Europe/Berlin",
        "MEDCELL_METRICS_BIND": "0.0.0.0:9464",
    }


@pytest.mark.process
def test_a_new_metrics_bind_recreates_the_supervisor_publishing_only_there(
    runtime, medcell, fake, config
):
    medcell.json("up")
    first = fake.containers_by_name["medcell-supervisor"]
    runtime.stack.config = dataclasses.replace(config, metrics_bind=("10.0.0.5", 9100))
    out = runtime.stack.up()
    assert "recreated medcell-supervisor for new settings or image" in out["repaired"]
    supervisor = fake.containers_by_name["medcell-supervisor"]
    assert supervisor is not first and supervisor.status == "running"
    assert supervisor.kwargs["ports"] == {"9100/tcp": ("10.0.0.5", 9100)}
    assert supervisor.kwargs["environment"]["MEDCELL_METRICS_BIND"] == "0.0.0.0:9100"


@pytest.mark.process
def test_up_makes_the_run_dirs(medcell, config):
    medcell.json("up")
    for sub in ("facilities", "supervisor", "gateway"):
        assert stat.S_IMODE((config.home / "run" / sub).stat().st_mode) == 0o755


@pytest.mark.process
def test_up_is_idempotent(medcell, fake):
    medcell.json("up")
    first = fake.containers_by_name["medcell-gateway"]
    assert medcell.json("up")["repaired"] == []
    assert fake.containers_by_name["medcell-gateway"] is first


@pytest.mark.process
def test_up_recreates_a_removed_gateway(medcell, fake):
    medcell.json("facility", "create", "alpha")
    medcell.json("up")
    fake.containers_by_name["medcell-gateway"].remove(force=True)
    out = medcell.json("up")
    assert "created medcell-gateway" in out["repaired"]
    assert fake.containers_by_name["medcell-gateway"].networks == {"medcell-edge"}


@pytest.mark.process
def test_up_recreates_gateway_when_settings_change(runtime, medcell, fake, config):
    medcell.json("up")
    first = fake.containers_by_name["medcell-gateway"]
    runtime.stack.config = Config(home=config.home, gateway_port=9443)
    out = runtime.stack.up()
    assert "recreated medcell-gateway for new settings or image" in out["repaired"]
    assert fake.containers_by_name["medcell-gateway"] is not first


@pytest.mark.process
def test_up_rewrites_routes_from_containers_and_state(medcell, fake, config):
    for slug in ("alpha", "beta", "gamma"):
        medcell.json("facility", "create", slug)
    medcell.json("facility", "stop", "beta")
    fake.containers_by_name["medcell-gamma"].stop()
    state_file.save(config, "gamma", FacilityState(asleep=True, wake_at=2e9))
    (config.home / "gateway" / "routes.json").unlink()
    medcell.json("up")
    routes = json.loads((config.home / "gateway" / "routes.json").read_text())
    assert routes["version"] == 2
    assert routes["facilities"] == {
        "alpha": {"state": "running"},
        "beta": {"state": "stopped"},
        "gamma": {"state": "asleep"},
    }
    assert fake.containers_by_name["medcell-gamma"].status == "exited"  # stays asleep


@pytest.mark.process
def test_up_starts_a_facility_that_should_run(medcell, fake):
    medcell.json("facility", "create", "alpha")
    fake.containers_by_name["medcell-alpha"].stop()  # e.g. stopped behind medcell's back
    assert "started medcell-alpha" in medcell.json("up")["repaired"]
    assert fake.containers_by_name["medcell-alpha"].status == "running"


@pytest.mark.process
def test_up_upgrades_facilities_to_a_rebuilt_image_keeping_their_volumes(medcell, fake):
    medcell.json("facility", "create", "alpha")
    medcell.json("facility", "create", "beta")
    medcell.json("facility", "stop", "beta")
    fake.image_ids["medcell-facility:latest"] = "sha256:rebuilt"
    out = medcell.json("up")
    assert "upgraded medcell-alpha" in out["repaired"]
    assert "upgraded medcell-beta" in out["repaired"]
    alpha, beta = fake.containers_by_name["medcell-alpha"], fake.containers_by_name["medcell-beta"]
    assert alpha.kwargs["labels"]["medcell.image"] == "sha256:rebuilt"
    assert alpha.status == "running" and beta.status != "running"
    assert "medcell-alpha-data" in fake.volumes_by_name
    assert not [r for r in medcell.json("up")["repaired"] if r.startswith("upgraded")]


@pytest.mark.process
def test_up_gives_facilities_their_new_origin_when_the_domain_changes(runtime, medcell, fake):
    medcell.json("facility", "create", "alpha")
    env = fake.containers_by_name["medcell-alpha"].kwargs["environment"]
    assert env["MEDCELL_PUBLIC_URL"] == "https://alpha.localhost:8443/"
    config = runtime.stack.config
    runtime.stack.config = runtime.facilities.config = Config(
        home=config.home, domain="praxen.example", gateway_port=443
    )
    out = runtime.stack.up()
    assert "upgraded medcell-alpha" in out["repaired"]
    env = fake.containers_by_name["medcell-alpha"].kwargs["environment"]
    assert env["MEDCELL_PUBLIC_URL"] == "https://alpha.praxen.example/"
    gateway = fake.containers_by_name["medcell-gateway"].kwargs["environment"]
    assert gateway["MEDCELL_DOMAIN"] == "praxen.example"


@pytest.mark.process
def test_down_removes_only_the_gateway(medcell, fake):
    medcell.json("facility", "create", "alpha")
    medcell.json("up")
    assert medcell.json("down") == {"gateway": "medcell-gateway", "removed": True}
    assert fake.names() == {
        "medcell-alpha",
        "medcell-alpha-data",
        "medcell-alpha-keys",
        "medcell-supervisor",
        "medcell-metrics",
    }
    assert fake.containers_by_name["medcell-alpha"].status == "running"
    assert medcell.json("down")["removed"] is False


@pytest.mark.process
def test_up_makes_a_self_signed_certificate_once(medcell, config):
    medcell.json("up")
    cert = config.home / "gateway" / "tls" / "cert.pem"
    key = config.home / "gateway" / "tls" / "key.pem"
    assert b"BEGIN CERTIFICATE" in cert.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = cert.read_bytes()
    medcell.json("up")
    assert cert.read_bytes() == before


def subject_names(cert) -> str:
    return subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.process
def test_the_self_signed_certificate_covers_every_facilitys_origin(medcell, config):
    medcell.json("up")
    names = subject_names(config.home / "gateway" / "tls" / "cert.pem")
    assert "DNS:*.localhost" in names and "DNS:localhost" in names


@pytest.mark.process
def test_a_certificate_from_before_facility_origins_is_replaced(medcell, config):
    tls_dir = config.home / "gateway" / "tls"
    tls_dir.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(tls_dir / "key.pem"), "-out", str(tls_dir / "cert.pem"),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        capture_output=True, check=True,
    )  # fmt: skip
    medcell.json("up")
    assert "DNS:*.localhost" in subject_names(tls_dir / "cert.pem")


def test_operator_certificate_is_installed(tmp_path, config):
    source = tmp_path / "own"
    source.mkdir()
    (source / "c.pem").write_text("-----BEGIN CERTIFICATE-----\nX\n")
    (source / "k.pem").write_text("-----BEGIN PRIVATE KEY-----\nY\n")
    own = Config(home=config.home, tls_cert=source / "c.pem", tls_key=source / "k.pem")
    directory = tls.ensure_certificate(own)
    assert (directory / "cert.pem").read_text() == (source / "c.pem").read_text()
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600


def test_operator_certificate_must_be_pem(tmp_path, config):
    (tmp_path / "c.pem").write_text("nope")
    own = Config(home=config.home, tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "c.pem")
    with pytest.raises(tls.TLSError, match="not a PEM file"):
        tls.ensure_certificate(own)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to the gateway's uid needs root")
@pytest.mark.process
def test_as_root_the_key_belongs_to_the_gateway_user(config):
    directory = tls.ensure_certificate(config, owner=(10001, 10001))
    assert (directory / "key.pem").stat().st_uid == 10001


@pytest.mark.process
def test_gateway_gets_no_secrets_only_its_settings(medcell, fake):
    medcell.json("up")
    assert fake.containers_by_name["medcell-gateway"].kwargs["environment"] == {
        "MEDCELL_GATEWAY_CONFIG": "/etc/medcell-gateway",
        "MEDCELL_GATEWAY_PORT": "8443",
        "MEDCELL_DOMAIN": "localhost",
        "MEDCELL_WAKE_BUDGET": "20",
        "MEDCELL_WAKE_BUDGET_WINDOW": "600s",
    }


@pytest.mark.process
def test_taken_port_is_a_clear_error_and_leaves_no_gateway(medcell, fake):
    from tests.provisioner.fakedocker import api_error

    fake.failures["start"] = api_error(
        500, "listen tcp4 0.0.0.0:8443: bind: address already in use"
    )
    result = medcell("up")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: ports 8443/8080 are taken; set MEDCELL_GATEWAY_PORT and MEDCELL_GATEWAY_HTTP_PORT\n"
    )
    assert "medcell-gateway" not in fake.containers_by_name


def test_gateway_may_use_every_core_unless_told_otherwise(tmp_path):
    from provisioner.host import specs
    from provisioner.host.errors import InvalidArgument

    home = {"MEDCELL_HOME": str(tmp_path)}
    assert Config.from_env(home).gateway_cpus == os.cpu_count()
    config = Config.from_env({**home, "MEDCELL_GATEWAY_CPUS": "1.5"})
    assert specs.gateway_spec(config, "10001:10001", None).limits.cpus == 1.5
    with pytest.raises(InvalidArgument, match="MEDCELL_GATEWAY_CPUS"):
        Config.from_env({**home, "MEDCELL_GATEWAY_CPUS": "two"})


def test_the_gateway_is_told_which_load_balancers_to_believe(tmp_path):
    from provisioner.host import specs
    from provisioner.host.errors import InvalidArgument

    home = {"MEDCELL_HOME": str(tmp_path)}
    plain = specs.gateway_spec(Config.from_env(home), "10001:10001", None)
    assert "MEDCELL_GATEWAY_TRUSTED_PROXIES" not in plain.environment
    config = Config.from_env({**home, "MEDCELL_GATEWAY_TRUSTED_PROXIES": "192.0.2.10, 10.1.0.0/16"})
    spec = specs.gateway_spec(config, "10001:10001", None)
    assert spec.environment["MEDCELL_GATEWAY_TRUSTED_PROXIES"] == "192.0.2.10/32,10.1.0.0/16"
    with pytest.raises(InvalidArgument, match="MEDCELL_GATEWAY_TRUSTED_PROXIES"):
        Config.from_env({**home, "MEDCELL_GATEWAY_TRUSTED_PROXIES": "lb.example"})

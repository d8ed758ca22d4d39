"""`medcell up` with MEDCELL_SMTP_URL: the secret in one 0600 file, mail on in facilities, and a
network for the supervisor only while mail is configured."""

import json
import stat

import pytest

from provisioner.host import smtp
from provisioner.host.errors import InvalidArgument

URL = "smtp+starttls://relay%40praxis:s3cr%3At-pw@mail.example.org:2525"


@pytest.fixture
def mail_env(monkeypatch):
    monkeypatch.setenv("MEDCELL_SMTP_URL", URL)
    monkeypatch.setenv("MEDCELL_MAIL_FROM", "noreply@medcell.example")


def everything_docker_sees(fake) -> str:
    """Environment, labels and settings of every container, as Docker would show them."""
    return json.dumps([c.kwargs for c in fake.containers_by_name.values()], default=str)


@pytest.mark.process
def test_up_keeps_the_smtp_secret_in_one_private_file(medcell, fake, config, mail_env):
    medcell.json("facility", "create", "alpha")
    out = medcell.json("up")
    assert out["mail"] == "on"
    path = config.home / "secrets" / "smtp.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = smtp.load(config.home)
    assert (saved.scheme, saved.host, saved.port) == ("smtp+starttls", "mail.example.org", 2525)
    assert (saved.username, saved.password) == ("relay@praxis", "s3cr:t-pw")
    seen = everything_docker_sees(fake)
    assert "s3cr" not in seen and "relay" not in seen and "mail.example.org" not in seen
    # The gateway mounts nothing that holds the file; the supervisor has MEDCELL_HOME.
    gateway = fake.containers_by_name["medcell-gateway"].kwargs["volumes"]
    assert not any(str(config.home / "secrets").startswith(host) for host in gateway)
    assert str(config.home) not in gateway


@pytest.mark.process
def test_facilities_learn_only_that_mail_is_on(medcell, fake, mail_env):
    medcell.json("facility", "create", "alpha")
    medcell.json("up")
    env = fake.containers_by_name["medcell-alpha"].kwargs["environment"]
    assert env["MEDCELL_MAIL"] == "on"
    assert not any("SMTP" in name for name in env)
    assert fake.containers_by_name["medcell-alpha"].kwargs["network_mode"] == "none"
    # A facility created afterwards gets it too.
    medcell.json("facility", "create", "beta")
    assert fake.containers_by_name["medcell-beta"].kwargs["environment"]["MEDCELL_MAIL"] == "on"


@pytest.mark.process
def test_the_supervisor_gets_a_network_of_its_own_only_with_mail(
    medcell, fake, config, mail_env, monkeypatch
):
    medcell.json("up")
    supervisor = fake.containers_by_name["medcell-supervisor"].kwargs
    # Its metrics are published from the mail network then: still its own.
    assert supervisor["network"] == "medcell-mail"
    assert supervisor["ports"] == {"9464/tcp": ("127.0.0.1", 9464)}
    network = fake.networks_by_name["medcell-mail"]
    assert not network.internal and network.members == {"medcell-supervisor"}
    assert "medcell-gateway" not in network.members
    assert "medcell-metrics" not in fake.networks_by_name

    monkeypatch.delenv("MEDCELL_SMTP_URL")
    out = medcell.json("up")
    assert out["mail"] == "off"
    assert not (config.home / "secrets" / "smtp.json").exists()
    supervisor = fake.containers_by_name["medcell-supervisor"].kwargs
    assert supervisor["network"] == "medcell-metrics"
    assert "medcell-mail" not in fake.networks_by_name


@pytest.mark.process
def test_without_smtp_nothing_changes(medcell, fake, config):
    medcell.json("facility", "create", "alpha")
    assert medcell.json("up")["mail"] == "off"
    assert "MEDCELL_MAIL" not in fake.containers_by_name["medcell-alpha"].kwargs["environment"]
    assert fake.containers_by_name["medcell-supervisor"].kwargs["network"] == "medcell-metrics"
    assert not (config.home / "secrets").exists()


def test_a_bad_smtp_url_is_refused_before_anything_changes(medcell, fake, monkeypatch):
    monkeypatch.setenv("MEDCELL_SMTP_URL", "http://mail.example.org")
    monkeypatch.setenv("MEDCELL_MAIL_FROM", "noreply@medcell.example")
    result = medcell("up")
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: MEDCELL_SMTP_URL must start with smtp://")
    assert "medcell-gateway" not in fake.containers_by_name


@pytest.mark.parametrize(
    ("url", "mail_from", "message"),
    [
        ("smtp://", "a@b.example", "needs a host"),
        ("smtp://user@host", "a@b.example", "both user and password"),
        ("smtp://host/path", "a@b.example", "path"),
        ("smtp://host:99999", "a@b.example", "not a valid URL"),
        ("smtp://host", None, "MEDCELL_MAIL_FROM"),
        ("smtp://host", "a@b.example\nBcc: x@y", "MEDCELL_MAIL_FROM"),
    ],
)
def test_smtp_urls_are_checked(url, mail_from, message):
    with pytest.raises(InvalidArgument, match=message):
        smtp.parse(url, mail_from)


def test_default_ports_follow_the_scheme():
    ports = {s: smtp.parse(f"{s}://mail", "a@b.example").port for s in smtp.SCHEMES}
    assert ports == {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


def test_the_password_never_shows_in_a_repr():
    settings = smtp.parse(URL, "noreply@medcell.example")
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings)


def test_up_refuses_a_password_over_plain_smtp(medcell, fake, config, monkeypatch):
    monkeypatch.setenv("MEDCELL_SMTP_URL", "smtp://relay:secret@mail.example.org:25")
    monkeypatch.setenv("MEDCELL_MAIL_FROM", "noreply@medcell.example")
    result = medcell("up")
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: MEDCELL_SMTP_URL: a user and password are only sent")
    assert "smtp+starttls://" in result.stderr and "secret" not in result.stderr
    assert "medcell-gateway" not in fake.containers_by_name
    assert not (config.home / "secrets" / "smtp.json").exists()


def test_a_saved_password_over_plain_smtp_is_not_used(config):
    settings = smtp.parse("smtp+starttls://relay:secret@mail.example.org", "a@b.example")
    smtp.save(config.home, settings)
    path = smtp.settings_path(config.home)
    path.write_text(json.dumps({**settings.to_json(), "scheme": "smtp"}))  # an older release's
    with pytest.raises(InvalidArgument, match="plain smtp://"):
        smtp.load(config.home)


@pytest.mark.process
def test_the_mail_rate_is_kept_with_the_smtp_settings(medcell, config, mail_env, monkeypatch):
    assert smtp.load(config.home) is None
    medcell.json("up")
    assert smtp.load(config.home).rate == ((30, 60), (1000, 86400))  # the default
    monkeypatch.setenv("MEDCELL_MAIL_RATE", "5/m, 100/h, 200/d")
    medcell.json("up")
    assert smtp.load(config.home).rate == ((5, 60), (100, 3600), (200, 86400))


@pytest.mark.parametrize("rate", ["", "5", "0/m", "5/w", "5/m,6/m", "-1/d", "5/m;100/d"])
def test_bad_mail_rates_are_refused(medcell, fake, mail_env, monkeypatch, rate):
    monkeypatch.setenv("MEDCELL_MAIL_RATE", rate or " ")
    result = medcell("up")
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: MEDCELL_MAIL_RATE")
    assert "medcell-gateway" not in fake.containers_by_name

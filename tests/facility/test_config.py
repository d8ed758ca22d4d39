import pytest

from services.facility.core.config import Config
from services.facility.core.errors import ConfigError


def env(tmp_path, **values) -> dict:
    return {
        "MEDCELL_FACILITY": "demo",
        "MEDCELL_DATA_DIR": str(tmp_path / "data"),
        "MEDCELL_KEY_DIR": str(tmp_path / "keys"),
        **values,
    }


def test_facility_slug_with_a_trailing_newline_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        Config.from_env(env(tmp_path, MEDCELL_FACILITY="demo\n"))


@pytest.mark.parametrize("retention", ["07d", "0s", "8d", "7 d"])
def test_retention_the_cli_refuses_is_refused_here_too(tmp_path, retention):
    with pytest.raises(ConfigError):
        Config.from_env(env(tmp_path, MEDCELL_RETENTION=retention))


def test_the_shared_rules_accept_the_defaults(tmp_path):
    config = Config.from_env(env(tmp_path, MEDCELL_RETENTION="12h"))
    assert (config.facility, config.retention, config.session_seconds) == ("demo", 43200, 43200)


def test_the_app_sets_no_flask_options_it_does_not_use(app):
    """Flask's own session and JSON key sorting are unused; its cookies are set where made."""
    from flask import Flask

    assert "JSON_SORT_KEYS" not in app.config
    for name in ("SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE"):
        assert app.config[name] == Flask.default_config[name]


def test_the_public_url_defaults_to_the_facilitys_own_development_origin(tmp_path):
    assert Config.from_env(env(tmp_path)).public_url == "https://demo.localhost:8443/"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://demo.praxis.example/", "https://demo.praxis.example/"),
        ("https://demo.praxis.example", "https://demo.praxis.example/"),
        ("https://demo.praxis.example:443/", "https://demo.praxis.example/"),
        ("https://Demo.Localhost:8443/", "https://demo.localhost:8443/"),
    ],
)
def test_the_public_url_is_kept_as_an_origin(tmp_path, given, kept):
    config = Config.from_env(env(tmp_path, MEDCELL_PUBLIC_URL=given))
    assert config.public_url == kept
    assert config.url("p/abc") == f"{kept}p/abc"


@pytest.mark.parametrize(
    "url",
    [
        "http://demo.localhost:8443/",
        "https://demo.localhost:8443/f/demo/",
        "https://user@demo.localhost/",
        "https://demo.localhost/?x=1",
        "https://demo.localhost/#x",
        "https://evil.example\\@demo.localhost/",
        "https://demo..localhost/",
        "https://demo.localhost:99999/",
        "https://de%6do.localhost/",
        "https:///",
        "javascript:alert(1)",
        "https://demo/",
        "https://demo.praxen.example/f/demo/",
        "https://demo.prax en.example/",
        "https://evil.example/.demo.praxen.example/",
        "https://demo.praxen.example/\n",
    ],
)
def test_a_public_url_that_is_no_origin_is_refused(tmp_path, url):
    with pytest.raises(ConfigError, match="MEDCELL_PUBLIC_URL"):
        Config.from_env(env(tmp_path, MEDCELL_PUBLIC_URL=url))

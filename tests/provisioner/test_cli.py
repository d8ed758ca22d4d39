"""The CLI's shape: --json everywhere, one-line errors, help without an engine."""

import json

import pytest
from click.testing import CliRunner

from provisioner.cli.commands import cli
from provisioner.host.errors import DockerUnavailable

# Each command, run in this order against the fake engine, and what its --json output must say.
COMMANDS = [
    (["up"], {"gateway": "medcell-gateway", "status": "running", "supervisor": "running"}),
    (["facility", "create", "alpha"], {"slug": "alpha", "admin_user": "admin"}),
    (["facility", "list"], [{"slug": "alpha", "name": "alpha", "status": "running"}]),
    (["facility", "show", "alpha"], {"slug": "alpha", "status": "running", "retention": "7d"}),
    (["facility", "stop", "alpha"], {"slug": "alpha", "status": "stopped"}),
    (["facility", "start", "alpha"], {"slug": "alpha", "status": "running"}),
    (["facility", "rotate-key", "alpha"], {"slug": "alpha", "version": 2}),
    (["facility", "delete", "alpha", "--yes"], {"slug": "alpha", "deleted": True}),
    (["down"], {"gateway": "medcell-gateway", "removed": True}),
]


def _contains(document, expected) -> bool:
    if isinstance(expected, dict):
        return isinstance(document, dict) and all(
            key in document and _contains(document[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(document, list)
            and len(document) == len(expected)
            and all(_contains(d, e) for d, e in zip(document, expected, strict=True))
        )
    return document == expected


@pytest.mark.process
def test_every_command_prints_one_json_document_with_its_result(medcell):
    for args, expected in COMMANDS:
        result = medcell(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
        document = json.loads(result.stdout)
        assert _contains(document, expected), (args, document)


def test_create_json_carries_the_one_time_admin_password(medcell, fake):
    document = json.loads(medcell("facility", "create", "alpha", "--json").stdout)
    assert document["admin_password"] == fake.passwords[0]
    assert document["url"] == "https://alpha.localhost:8443/"


@pytest.mark.parametrize("args", [args for args, _ in COMMANDS], ids=" ".join)
def test_every_command_has_help_with_json_and_needs_no_engine(args):
    command = args[:2] if args[0] == "facility" else args[:1]
    result = CliRunner().invoke(cli, [*command, "--help"], env={"DOCKER_HOST": "tcp://0:1"})
    assert result.exit_code == 0
    assert "--json" in result.output


def test_no_engine_is_one_clear_error(medcell, monkeypatch):
    def unavailable(*a, **k):
        raise DockerUnavailable("connecting to Docker: no Docker Engine answers (refused)")

    monkeypatch.setattr(medcell.runtime.facilities.backend, "containers", unavailable)
    result = medcell("facility", "list")
    assert result.exit_code == 1
    assert result.stderr == ("Error: connecting to Docker: no Docker Engine answers (refused)\n")


def test_environment_reaches_the_cli(tmp_path):
    env = {"MEDCELL_HOME": str(tmp_path), "MEDCELL_GATEWAY_PORT": "nope"}
    result = CliRunner().invoke(cli, ["facility", "list"], env=env)
    assert result.exit_code == 1
    assert result.stderr == "Error: MEDCELL_GATEWAY_PORT 'nope' is not a TCP port\n"


def test_human_output_of_create_mentions_password_once(medcell, fake):
    result = medcell("facility", "create", "alpha")
    assert result.exit_code == 0
    assert result.stdout.count(fake.passwords[0]) == 1
    assert "shown only this once" in result.stdout

"""The CLI's shape: --json everywhere, one-line errors, help without an engine."""

import json

import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.errors import DockerUnavailable

COMMANDS = [
    ["up"],
    ["down"],
    ["facility", "create", "alpha"],
    ["facility", "list"],
    ["facility", "show", "alpha"],
    ["facility", "stop", "alpha"],
    ["facility", "start", "alpha"],
    ["facility", "rotate-key", "alpha"],
    ["facility", "delete", "alpha", "--yes"],
]


def test_every_command_prints_json(medcell):
    for args in COMMANDS:
        result = medcell(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)


@pytest.mark.parametrize("args", COMMANDS)
def test_every_command_has_help_and_needs_no_engine(args):
    result = CliRunner().invoke(cli, [*args[:2], "--help"], env={"DOCKER_HOST": "tcp://0:1"})
    assert result.exit_code == 0
    assert "--json" in result.output or args[0] == "facility"


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

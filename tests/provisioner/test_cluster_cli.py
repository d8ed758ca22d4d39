"""The cluster commands refuse bad input with one `Error:` line before touching any engine."""

import json

import pytest
from click.testing import CliRunner

from provisioner.cli.commands import cli

NO_ENGINE = {"DOCKER_HOST": "tcp://0:1"}
TOKEN = "SWMTKN-1-" + "a" * 50 + "-" + "b" * 25


def run(*args: str, home=None):
    env = {**NO_ENGINE, **({"MEDCELL_HOME": str(home)} if home else {})}
    return CliRunner().invoke(cli, list(args), env=env)


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "args, names",
    [
        (["cluster", "init", "--advertise-addr", "not-an-ip"], "--advertise-addr"),
        (["cluster", "join", "--token", "guess", "--bundle", "b.json", "10.0.0.1"], "--token"),
        (["cluster", "join", "--token", TOKEN, "--bundle", "b.json", "bad host:1"], "manager"),
        (["cluster", "join", "--token", TOKEN, "--bundle", "b.json", "10.0.0.1:0"], "manager"),
        (["cluster", "join", "--token", TOKEN, "--bundle", "missing.json", "10.0.0.1"], "bundle"),
    ],
)
def test_cluster_commands_refuse_bad_input(args, names, tmp_path):
    assert names in one_error_line(run(*args, home=tmp_path))


def test_join_refuses_a_bundle_that_is_not_one(tmp_path):
    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps({"ca_cert": "x", "cert": "y", "key": "z"}))
    error = one_error_line(
        run("cluster", "join", "--token", TOKEN, "--bundle", str(bundle), "m:2377")
    )
    assert "not a join bundle" in error
    assert bundle.exists()


@pytest.mark.parametrize(
    "command",
    [["cluster", "init"], ["cluster", "join-command"], ["cluster", "join"], ["node", "list"]],
)
def test_cluster_commands_have_help_with_json_and_need_no_engine(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "--json" in result.output

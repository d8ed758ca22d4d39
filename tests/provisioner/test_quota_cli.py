"""The operator's quotas: set on create, changed with set-quota, shown with usage by show."""

import json

from click.testing import CliRunner

from provisioner.cli.commands import cli


def test_create_sets_the_quotas_inside_the_facility(medcell, fake):
    result = medcell(
        "facility", "create", "alpha", "--quota", "500MiB", "--conversation-quota", "50MiB"
    )
    assert result.exit_code == 0, result.output
    commands = [cmd[3:] for _, cmd in fake.execs]
    assert ["set-quota", "--facility", "500MiB", "--conversation", "50MiB"] in commands
    shown = json.loads(medcell("facility", "show", "alpha", "--json").stdout)
    assert shown["quota"] == "500MiB" and shown["conversation_quota"] == "50MiB"
    assert shown["used_bytes"] == 1048576


def test_create_without_quota_leaves_the_defaults(medcell, fake):
    assert medcell("facility", "create", "alpha").exit_code == 0
    assert not [cmd for _, cmd in fake.execs if "set-quota" in cmd]
    shown = json.loads(medcell("facility", "show", "alpha", "--json").stdout)
    assert shown["quota"] == "2GiB"


def test_a_bad_size_is_refused_before_anything_is_made(medcell, fake):
    for size in ("5GB", "0MiB", "1.5GiB", "512KiB", "100TiB", "2gib"):
        result = medcell("facility", "create", "alpha", "--quota", size)
        assert result.exit_code != 0
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
        assert not fake.names()


def test_set_quota_changes_it_and_prints_the_usage(medcell, fake):
    medcell("facility", "create", "alpha")
    result = medcell("facility", "set-quota", "alpha", "10GiB", "--conversation", "1GiB", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["slug"] == "alpha"
    assert document["quota"] == "10GiB" and document["conversation_quota"] == "1GiB"
    human = medcell("facility", "set-quota", "alpha", "3GiB").stdout
    assert "quota 3GiB" in human and "each conversation 1GiB" in human
    assert "quota:" in medcell("facility", "show", "alpha").stdout


def test_set_quota_needs_a_size_a_valid_one_and_a_running_facility(medcell, fake):
    medcell("facility", "create", "alpha")
    assert "give a facility quota" in medcell("facility", "set-quota", "alpha").stderr
    assert "invalid size" in medcell("facility", "set-quota", "alpha", "3 GiB").stderr
    assert "no facility" in medcell("facility", "set-quota", "beta", "3GiB").stderr
    medcell("facility", "stop", "alpha")
    stopped = medcell("facility", "set-quota", "alpha", "3GiB")
    assert stopped.exit_code != 0 and "start it first" in stopped.stderr
    shown = json.loads(medcell("facility", "show", "alpha", "--json").stdout)
    assert shown["quota"] is None  # a stopped facility cannot be asked; show says so, no guess


def test_set_quota_has_help_and_needs_no_engine():
    result = CliRunner().invoke(
        cli, ["facility", "set-quota", "--help"], env={"DOCKER_HOST": "tcp://0:1"}
    )
    assert result.exit_code == 0 and "--json" in result.output and "2GiB" in result.output

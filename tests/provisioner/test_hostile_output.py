"""What a facility's container prints is read as if it were hostile: bounded in size, time and
values, and a refusal is the command's failure, never a crash or a partial result."""

import itertools
import json
import time

import pytest

from provisioner.host import facility_commands
from provisioner.host.docker_backend import (
    ERROR_BYTES,
    OUTPUT_BYTES,
    ContainerSpec,
    DockerBackend,
    _bounded,
)
from provisioner.host.errors import FacilityCommandFailed, OutputRefused


def test_output_beyond_the_cap_is_refused():
    chunks = ((b"x" * 65536, None) for _ in itertools.count())
    with pytest.raises(OutputRefused, match="more than"):
        _bounded(chunks, "medcell-a", 60)


def test_a_stream_that_trickles_on_is_refused_after_its_time():
    def trickle():
        while True:
            time.sleep(0.05)
            yield b"{", None

    with pytest.raises(OutputRefused, match="still printing"):
        _bounded(trickle(), "medcell-a", 0.3)


def test_of_stderr_only_its_end_is_kept():
    chunks = [(None, b"e" * 65536)] * 40 + [(b'{"ok": 1}', b"\nError: the last line")]
    out, err = _bounded(iter(chunks), "medcell-a", 60)
    assert out == b'{"ok": 1}'
    assert len(err) == ERROR_BYTES and err.endswith(b"Error: the last line")


def test_the_stream_is_closed_when_refused():
    closed = []

    def stream():
        try:
            while True:
                yield b"x" * 65536, None
        finally:
            closed.append(True)

    with pytest.raises(OutputRefused):
        _bounded(stream(), "medcell-a", 60)
    assert closed == [True]


@pytest.mark.parametrize(
    "printed",
    [
        '{"version": NaN}',
        '{"version": Infinity}',
        '{"version": 1e999}',
        "[1, 2]",
        "",
        "x" * 100,
        "[" * 100_000,
    ],
)
def test_a_management_command_that_prints_no_honest_json_object_fails(medcell, fake, printed):
    medcell.json("facility", "create", "alpha")
    fake.exec_handler = lambda container, cmd: (0, printed, "")
    result = medcell("facility", "rotate-key", "alpha")
    assert result.exit_code != 0
    assert "printed no JSON" in result.output


def test_a_management_command_that_floods_fails_with_a_clear_error(medcell, fake):
    medcell.json("facility", "create", "alpha")
    fake.exec_handler = lambda container, cmd: (0, "x" * (OUTPUT_BYTES + 1), "")
    result = medcell("facility", "rotate-key", "alpha")
    assert result.exit_code != 0
    assert f"printed more than {OUTPUT_BYTES} bytes" in result.output


def test_a_one_off_container_that_floods_fails_with_a_clear_error(fake):
    backend = DockerBackend(fake)
    fake.exec_handler = lambda container, cmd: (0, "y" * (OUTPUT_BYTES + 1), "")
    spec = ContainerSpec(
        name="medcell-alpha-restore",
        image="medcell-facility:latest",
        user="10001:10001",
        labels={},
        command=["python", "-m", "services.facility", "restore"],
        restart=None,
        stdin_open=True,
    )
    with pytest.raises(FacilityCommandFailed, match="more than"):
        facility_commands.run_offline(backend, spec, json.dumps({}).encode(), timeout=30)

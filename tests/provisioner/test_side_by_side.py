"""Several `medcell` commands at once on one MEDCELL_HOME (real threads, the fake engine): one
facility's commands run one after the other; other facilities may change meanwhile."""

import threading

import click
import pytest

from provisioner.cli.commands import Runtime, cli
from provisioner.host import routes
from provisioner.host.docker_backend import DockerBackend
from tests.provisioner.lockholder import held_elsewhere


@pytest.fixture
def operators(config, fake, runtime):
    """Each call: another operator's runtime (own objects, the same engine and MEDCELL_HOME)."""

    def another() -> Runtime:
        other = Runtime(config, DockerBackend(fake), stack_options=_stack_options(runtime))
        other.facilities.sleep, other.facilities.clock = runtime.facilities.sleep, runtime.clock
        return other

    runtime.clock = runtime.facilities.clock
    return another


def _stack_options(runtime: Runtime) -> dict:
    stack = runtime.stack
    return {
        "build": stack.build,
        "identity": stack.identity,
        "supervisor": stack.supervisor_identity,
    }


def run(runtime: Runtime, *args: str) -> str | None:
    """Run `medcell ARGS` in this thread: None on success, else the `Error: …` line it prints."""
    try:
        cli.main(list(args), prog_name="medcell", obj=runtime, standalone_mode=False)
    except click.ClickException as e:
        return f"Error: {e.format_message()}"
    return None


class Background:
    """`medcell ARGS` in a thread of its own; `.error` once joined."""

    def __init__(self, runtime: Runtime, *args: str):
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, args=(runtime, args))
        self.thread.start()

    def _run(self, runtime: Runtime, args: tuple[str, ...]) -> None:
        self.error = run(runtime, *args)

    def join(self) -> str | None:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the command did not end"
        return self.error


def waits_for(runtime: Runtime, slug: str) -> threading.Event:
    """Set once the runtime's commands say they wait for another command on `slug`."""
    waiting = threading.Event()
    said = runtime.facilities.progress

    def progress(message: str) -> None:
        if message.startswith(f"facility {slug} is held by "):
            waiting.set()
        said(message)

    runtime.facilities.progress = progress
    runtime.stack.progress = progress
    return waiting


def pause_delete(fake) -> tuple[threading.Event, threading.Event]:
    """A delete stops while it destroys the keys, holding the facility, until `go` is set."""
    shredding, go = threading.Event(), threading.Event()
    answer = fake.exec_handler

    def handler(container, cmd):
        if "shred-keys" in cmd:
            shredding.set()
            assert go.wait(30)
        return answer(container, cmd)

    fake.exec_handler = handler
    return shredding, go


def test_up_while_another_operator_deletes_a_facility_succeeds(medcell, fake, config, operators):
    medcell.json("up")
    for slug in ("alpha", "beta"):
        medcell.json("facility", "create", slug)
    shredding, go = pause_delete(fake)
    delete = Background(operators(), "facility", "delete", "alpha", "--yes")
    assert shredding.wait(10)
    upper = operators()
    fake.containers_by_name["medcell-beta"].status = "exited"  # something for up to repair
    waiting = waits_for(upper, "alpha")
    up = Background(upper, "up")
    assert waiting.wait(10)  # up saw alpha and waits for the delete to let go of it
    go.set()
    assert delete.join() is None
    assert up.join() is None
    assert fake.containers_by_name["medcell-beta"].status == "running"
    assert "medcell-alpha" not in fake.containers_by_name
    assert set(routes.read_routes(config)["facilities"]) == {"beta"}
    assert [row["slug"] for row in medcell.json("facility", "list")] == ["beta"]


def test_two_creates_of_one_slug_one_wins_the_other_says_it_exists(fake, operators):
    # The first create pauses while its facility starts; the second waits for it, then sees it.
    first_op, second_op = operators(), operators()
    starting, release = threading.Event(), threading.Event()

    def slow_sleep(seconds):
        starting.set()
        assert release.wait(10)

    fake.health_on_start = "starting"
    first_op.facilities.sleep = slow_sleep
    first = Background(first_op, "facility", "create", "alpha")
    assert starting.wait(10)
    fake.containers_by_name["medcell-alpha"].health = "healthy"
    waiting = waits_for(second_op, "alpha")
    second = Background(second_op, "facility", "create", "alpha")
    assert waiting.wait(10)
    release.set()
    assert first.join() is None
    assert second.join() == "Error: facility alpha already exists"
    assert len(fake.passwords) == 1


def test_start_during_a_delete_waits_then_finds_no_facility(medcell, fake, operators):
    medcell.json("facility", "create", "alpha")
    shredding, go = pause_delete(fake)
    delete = Background(operators(), "facility", "delete", "alpha", "--yes")
    assert shredding.wait(10)
    starter = operators()
    waiting = waits_for(starter, "alpha")
    start = Background(starter, "facility", "start", "alpha")
    assert waiting.wait(10)
    go.set()
    assert delete.join() is None
    assert start.join() == "Error: no facility alpha"
    assert fake.names() == set()


def test_commands_on_other_facilities_do_not_wait(medcell, fake, operators):
    medcell.json("facility", "create", "alpha")
    medcell.json("facility", "create", "beta")
    shredding, go = pause_delete(fake)
    delete = Background(operators(), "facility", "delete", "alpha", "--yes")
    assert shredding.wait(10)
    other = operators()
    assert run(other, "facility", "stop", "beta") is None
    assert run(other, "facility", "start", "beta") is None
    readings = (
        ["status"],
        ["facility", "list"],
        ["facility", "show", "beta"],
        ["facility", "backups"],
    )
    for reading in readings:
        assert run(other, *reading) is None
    go.set()
    assert delete.join() is None


def test_a_command_that_waits_too_long_names_the_facility_and_its_holder(medcell, config, runtime):
    medcell.json("facility", "create", "alpha")
    runtime.facilities.lock_wait = 0.5
    with held_elsewhere(config, "alpha", "medcell facility backup") as pid:
        result = medcell("facility", "stop", "alpha")
    assert result.exit_code == 1
    said, error = result.stderr.splitlines()
    assert said.startswith(f"facility alpha is held by medcell facility backup (pid {pid}) since ")
    assert error.startswith(
        f"Error: facility alpha is still held by medcell facility backup (pid {pid}) since "
    )
    assert error.endswith("; gave up after waiting 0.5 s")
    assert medcell.json("facility", "show", "alpha")["status"] == "running"


def test_a_lock_is_released_when_its_holder_dies(medcell, config, runtime):
    medcell.json("facility", "create", "alpha")
    with held_elsewhere(config, "alpha", "medcell facility backup"):
        pass  # the holder has exited: the kernel let go of its lock
    runtime.facilities.lock_wait = 0.0
    assert medcell.json("facility", "stop", "alpha")["status"] == "stopped"

"""Talking to the app inside a facility container: its health check and its management commands."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from medcell_common import strictjson
from provisioner.host import facility_http, specs
from provisioner.host.config import Config
from provisioner.host.docker_backend import ContainerInfo, ContainerSpec, DockerBackend
from provisioner.host.errors import (
    DockerError,
    FacilityCommandFailed,
    HealthTimeout,
    OutputRefused,
)

POLL_SECONDS = 0.1
NOTE_SECONDS = 5
LOOK_SECONDS = 0.5  # how often a facility's container is inspected while its socket is polled
KILLED = 137  # exit code of a command whose container stopped under it


def wait_healthy(
    backend: DockerBackend,
    container: str,
    timeout: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until the container passes its health check; fail early if it gave up."""
    deadline = clock() + timeout
    next_note = clock()
    while True:
        info = backend.container(container)
        if info is None:
            raise HealthTimeout(f"container {container} disappeared while starting")
        if info.status == "running" and info.health in ("healthy", None):
            return
        # A restart is the restart policy doing its job; only a container that gave up fails.
        if info.status in ("exited", "dead") or (
            info.status == "running" and info.health == "unhealthy"
        ):
            raise HealthTimeout(
                f"container {container} failed to start ({info.status}, exit code "
                f"{info.exit_code}); see `docker logs {container}`"
            )
        if info.status == "running" and passes_health_check(backend, info):
            return
        if clock() >= deadline:
            raise HealthTimeout(
                f"container {container} not healthy after {timeout:.0f}s; "
                f"see `docker logs {container}`"
            )
        if clock() >= next_note:
            progress(f"waiting for {container} to become healthy ({info.health})")
            next_note = clock() + NOTE_SECONDS
        sleep(POLL_SECONDS)


def wait_facility(
    config: Config,
    backend: DockerBackend,
    slug: str,
    timeout: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until the facility answers /healthz on its socket; fail early if its container died."""
    container = config.facility(slug).container
    looks = {"next": clock(), "note": clock() + NOTE_SECONDS}

    def alive() -> None:
        now = clock()
        if now >= looks["note"]:
            progress(f"waiting for {container} to answer on its socket")
            looks["note"] = now + NOTE_SECONDS
        if now < looks["next"]:
            return
        looks["next"] = now + LOOK_SECONDS
        info = backend.container(container)
        if info is None:
            raise HealthTimeout(f"container {container} disappeared while starting")
        if info.status in ("exited", "dead", "created"):
            raise HealthTimeout(
                f"container {container} failed to start ({info.status}, exit code "
                f"{info.exit_code}); see `docker logs {container}`"
            )

    try:
        facility_http.wait_healthy(config, slug, timeout, clock=clock, sleep=sleep, alive=alive)
    except HealthTimeout as e:
        if "did not answer" in str(e):
            raise HealthTimeout(
                f"container {container} not healthy after {timeout:.0f}s; "
                f"see `docker logs {container}`"
            ) from e
        raise


def passes_health_check(backend: DockerBackend, info: ContainerInfo) -> bool:
    """Run the image's own health check now.

    Docker runs the first check only after a full interval; asking ourselves makes `create`
    return as soon as the app answers, without a short interval costing CPU forever.
    """
    if not info.health_test:
        return False
    try:
        code, _, _ = backend.exec(info.name, list(info.health_test))
    except DockerError:
        return False  # e.g. it stopped meanwhile; the next look at its state tells
    return code == 0


def manage(backend: DockerBackend, container: str, *command: str) -> dict:
    """Run `python -m services.facility COMMAND` in the container; its stdout is one JSON object."""
    with _read_as_failure(command[0]):
        code, out, err = backend.exec(container, [*specs.MANAGE, *command])
    if code != 0:
        raise FacilityCommandFailed(
            f"{command[0]} in {container} failed (exit code {code}): {last_line(err)}",
            exit_code=code,
        )
    return json_object(out, f"{command[0]} in {container}")


def json_object(out: str, what: str) -> dict:
    """The one JSON object a management command printed, read as strictly as a socket's answer
    (no NaN or Infinity; a facility's container may be hostile). Never echoes stdout: it may
    hold a password."""
    try:
        result = strictjson.loads(out)
    except strictjson.StrictJSONError as e:
        raise FacilityCommandFailed(f"{what} printed no JSON") from e
    if not isinstance(result, dict):
        raise FacilityCommandFailed(f"{what} printed no JSON object")
    return result


@contextmanager
def _read_as_failure(what: str) -> Iterator[None]:
    """Output refused as too long or too slow is the command's failure."""
    try:
        yield
    except OutputRefused as e:
        raise FacilityCommandFailed(f"{what}: {e}") from e


def manage_offline(backend: DockerBackend, spec: ContainerSpec) -> dict:
    """Run a management command in a one-off container; its stdout is one JSON object."""
    backend.remove_container(spec.name)  # a leftover of an interrupted earlier attempt
    what = " ".join((spec.command or [])[len(specs.MANAGE) :]) or "command"
    with _read_as_failure(what):
        code, out, err = backend.run_once(spec)
    if code != 0:
        raise FacilityCommandFailed(
            f"{what} in {spec.name} failed (exit code {code}): {last_line(err)}", exit_code=code
        )
    return json_object(out, f"{what} in {spec.name}")


def shred_offline(backend: DockerBackend, spec: ContainerSpec) -> int:
    """Run `shred-keys` in a one-off container over the keys volume; return keys destroyed."""
    backend.remove_container(spec.name)  # a leftover of an interrupted earlier attempt
    with _read_as_failure("shred-keys"):
        code, out, err = backend.run_once(spec)
    if code != 0:
        raise FacilityCommandFailed(
            f"keys not destroyed ({last_line(err)}); nothing was removed", exit_code=code
        )
    try:
        return strictjson.integer(json_object(out, "shred-keys").get("destroyed", 0), "destroyed")
    except (FacilityCommandFailed, strictjson.StrictJSONError):
        return 0


def run_offline(backend: DockerBackend, spec: ContainerSpec, stdin: bytes, timeout: float) -> dict:
    """Run a management command in a one-off container, handing it `stdin`; its JSON object."""
    backend.remove_container(spec.name)  # a leftover of an interrupted earlier attempt
    action = spec.command[len(specs.MANAGE)] if spec.command else "command"
    with _read_as_failure(action):
        code, out, err = backend.run_once(spec, timeout=timeout, stdin=stdin)
    if code != 0:
        raise FacilityCommandFailed(f"{action} failed: {last_line(err)}", exit_code=code)
    lines = out.strip().splitlines()
    return json_object(lines[-1] if lines else "", action)


def last_line(text: str) -> str:
    """The last line of a command's stderr, without its `Error:` prefix."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("Error:").strip() if lines else "no error message"

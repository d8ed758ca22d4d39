"""Test groups: Docker, browser, install and lab tests are opt-in locally, on in `make test`."""

import pytest

GROUPS = {
    "docker": "needs a running Docker Engine and the medcell images",
    "browser": "needs Chromium and the running stack",
    "install": "build the package and install it into a fresh virtualenv",
    "lab": "need root and start a 3-node cluster lab on this machine (deploy/lab.sh)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, why in GROUPS.items():
        parser.addoption(
            f"--{name}", action="store_true", default=False, help=f"run tests that {why}"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for name in GROUPS:
        if config.getoption(f"--{name}"):
            continue
        skip = pytest.mark.skip(reason=f"{name} test: run with --{name} (make test does)")
        for item in items:
            if item.get_closest_marker(name):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_installation(tmp_path_factory):
    """One installation on the real engine, up once for the Docker tests where isolation is not
    the point: each module makes its own facilities in it (`own_facilities`), deleted after.
    Tests that take the stack down, kill its parts, fill a volume or count what sleeps and wakes
    make an installation of their own."""
    from devsupport import Installation

    home = tmp_path_factory.mktemp("shared") / "home"
    installation = Installation(home, stem="mcshared", MEDCELL_IDLE_TIMEOUT="15m")
    try:
        installation.medcell("up")
        yield installation
    finally:
        installation.remove()

"""Test groups: Docker, browser and lab tests are opt-in locally and always on in `make test`."""

import pytest

GROUPS = {
    "docker": "needs a running Docker Engine and the medcell images",
    "browser": "needs Chromium and the running stack",
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

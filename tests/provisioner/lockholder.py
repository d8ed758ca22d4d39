"""A facility's lock held by another process, as another operator's `medcell` command holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.host.config import Config

REPO = Path(__file__).resolve().parents[2]

_HOLD = """
import sys
from pathlib import Path
from provisioner.host import locks
from provisioner.host.config import Config
locks.set_holder(sys.argv[3])
with locks.facility_lock(Config(home=Path(sys.argv[1])), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@contextmanager
def held_elsewhere(config: Config, slug: str, holder: str) -> Iterator[int]:
    """Hold `slug`'s lock in a separate process (named `holder`); yields its pid."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(config.home), slug, holder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "held"
        yield process.pid
    finally:
        process.stdin.close()
        process.wait(timeout=20)

"""A facility's socket directory made by root without CAP_CHOWN (a root operator's supervisor,
cap_drop ALL, making it on a cluster node for the node API)."""

import os
import subprocess
import sys

MAKE = (
    "import sys; from pathlib import Path; from provisioner.host import home; "
    "from provisioner.host.config import Config; "
    "home.ensure_socket_dir(Config(home=Path(sys.argv[1])).facility('praxis'))"
)


def test_who_cannot_chown_gets_a_directory_anyone_may_make_the_socket_in(tmp_path):
    # As root: root without CAP_CHOWN. Otherwise the operator's own user, which cannot either.
    drop = ["setpriv", "--bounding-set=-chown"] if os.geteuid() == 0 else []
    result = subprocess.run(
        [*drop, sys.executable, "-c", MAKE, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
    )
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "run" / "facilities" / "praxis"
    assert directory.stat().st_mode & 0o777 == 0o777

"""The store's connections keep their locks: other processes never remove the WAL under them."""

import sqlite3
import subprocess
import sys

import pytest

from services.facility.core.store import Store

# Another process (as `docker exec … python -m services.facility create-admin` is) writes and
# closes its connection: if it takes itself for the last one, it checkpoints and deletes the WAL.
# Then it writes again (a new WAL) and dies without closing.
OTHER_PROCESS = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO t (v) VALUES ('one')")
conn.close()
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO t (v) VALUES ('two')")
os._exit(0)
"""


@pytest.mark.process
def test_migrating_again_keeps_the_open_connections_locks(tmp_path):
    store = Store(tmp_path / "facility.db")
    store.migrate()
    conn = store.conn()
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t (v) VALUES ('first')")

    store.migrate()  # as open_facility does a second time, with the keys
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(store.path)], timeout=60)
    assert done.returncode == 0

    assert sorted(conn.execute("SELECT v FROM t").fetchall()) == [("first",), ("one",), ("two",)]
    store.close()


def test_a_new_database_file_is_owner_only(tmp_path):
    store = Store(tmp_path / "data" / "facility.db")
    store.migrate()
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    conn = sqlite3.connect(store.path)
    conn.close()

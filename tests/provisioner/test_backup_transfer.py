"""Backups handed between two nodes through their node APIs (real mutual TLS on loopback), the
one-off containers of a fake engine running the facility's real backup and restore commands."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

from devsupport import eventually
from medcell_common.interfaces import Desired, RouteState
from provisioner.host import backup_keys, backup_transfer, cluster_ca, routes, specs, state_file
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import Busy, InvalidArgument, NodeError
from provisioner.host.node_api import NodeClient
from provisioner.supervisor.node_api import NodeServer, NodeService
from tests.provisioner.fakedocker import FakeDocker
from tests.provisioner.test_backups import messages, real_backup_commands, staff_message

GIB = 1024**3
META = {"name": "Praxis Nord", "retention": "7d", "created": "2026-12-05T13:00:00.000Z"}


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    home = tmp_path_factory.mktemp("cluster")
    cluster_ca.create_ca(home)
    return cluster_ca.install(home, cluster_ca.issue(home, "node"))


class Node:
    """One node: its own home, engine (fake, real facility commands) and node API."""

    def __init__(self, name: str, root: Path, tls_dir: Path):
        self.config = Config(home=root / "home", facility_uid=os.getuid())
        self.volumes = root / "volumes"
        self.fake = FakeDocker()
        self.fake.info = lambda: {"Name": name, "MemTotal": 8 * GIB}
        self.fake.exec_handler = real_backup_commands(self.fake, self.volumes)
        self.engine = DockerBackend(self.fake)
        self.server = NodeServer(
            ("127.0.0.1", 0), tls_dir, NodeService(self.config, self.engine), read_seconds=2.0
        )
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.client = NodeClient(f"127.0.0.1:{self.server.port}", tls_dir, timeout=20)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def nodes(tmp_path, tls_dir):
    made = [Node(name, tmp_path / name, tls_dir) for name in ("node1", "node2")]
    yield made
    for node in made:
        node.close()


def _facility_with_a_message(node: Node) -> str:
    """`praxis` prepared on the node, with one conversation holding one message."""
    node.client.prepare("praxis", META)
    return staff_message(node.volumes)


def test_a_backup_made_on_one_node_restores_on_another_with_its_messages(nodes):
    node1, node2 = nodes
    conversation = _facility_with_a_message(node1)
    backup_id, key = backup_keys.new_id(), backup_keys.new_key()

    made = node1.client.backup("praxis", backup_id, key)
    node2.client.prepare("praxis", made["meta"])
    copied = sum(
        node1.client.copy_backup_to(node2.client, backup_id, name) for name in backup_transfer.FILES
    )
    result = node2.client.restore("praxis", backup_id, key, [])

    assert made["meta"] == {k: META[k] for k in ("name", "retention", "created")}
    assert made["manifest"]["backup_id"] == backup_id
    assert copied == sum(made["sizes"].values()) > 0
    assert result["conversations"] == 1
    assert messages(node2.volumes, conversation) == ["Röntgen ok"]
    held = node1.config.home / "backups" / "held" / backup_id
    assert key not in b"".join(p.read_bytes() for p in held.iterdir())
    assert [b["backup_id"] for b in node2.client.held_backups()] == [backup_id]
    assert node1.client.drop_backup(backup_id) and not held.exists()


def test_a_backup_file_cut_short_is_not_kept(nodes):
    node1, _ = nodes
    with pytest.raises(NodeError):
        node1.client.upload("0123456789abcdef", "keys.sealed", _Short(b"x" * 10), 100)
    directory = node1.config.home / "backups" / "held" / "0123456789abcdef"
    left = eventually(
        lambda: (node1.server.pending, sorted(directory.glob("*")) + sorted(directory.glob(".*"))),
        lambda seen: seen == (0, []),
    )
    assert left == (0, [])


class _Short(io.BytesIO):
    """A source that ends before the length the upload announced."""


def test_a_restore_is_refused_while_the_facility_runs_on_the_node(nodes):
    node1, _ = nodes
    node1.client.prepare("praxis", META)
    facility = node1.config.facility("praxis")
    node1.engine.create_container(specs.facility_spec(node1.config, facility, "Praxis", "7d"))
    node1.engine.start(node1.config.facility("praxis").container)

    with pytest.raises(Busy):
        node1.client.restore("praxis", "0123456789abcdef", backup_keys.new_key(), [])


def test_hold_answers_503_on_the_gateway_and_release_lets_it_run(nodes):
    node1, _ = nodes
    node1.client.prepare("praxis", META)

    node1.client.hold("praxis", True)
    held = (routes.read_routes(node1.config) or {})["facilities"]["praxis"]["state"]
    desired = state_file.load(node1.config, "praxis").desired
    node1.client.hold("praxis", False)

    assert held == RouteState.STOPPED and desired == Desired.STOPPED
    assert (routes.read_routes(node1.config) or {})["facilities"]["praxis"][
        "state"
    ] == RouteState.ASLEEP
    assert state_file.load(node1.config, "praxis").desired == Desired.RUNNING


def test_a_backup_key_is_kept_on_the_node_and_destroyed_there(nodes):
    node1, _ = nodes
    record = backup_keys.BackupKey(
        "0123456789abcdef",
        "praxis",
        "2026-12-05T13:00:00Z",
        "2026-12-13T13:00:00Z",
        1_796_000_000,
        backup_keys.new_key(),
    )
    fields = {**record.public(), "expires_at": record.expires_at}
    fields["key"] = backup_transfer.key_text(record.key)

    node1.client.keep_key(fields)
    kept = backup_keys.load(node1.config, record.backup_id)
    destroyed = node1.client.destroy_key(record.backup_id)

    assert kept == record
    assert destroyed and backup_keys.load(node1.config, record.backup_id) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_at": "soon"},
        {"key": "c2hvcnQ="},
        {"facility": "../etc"},
        {"created": "yesterday"},
    ],
)
def test_a_bad_backup_key_is_refused_and_nothing_is_kept(nodes, fields):
    node1, _ = nodes
    good = {
        "facility": "praxis",
        "created": "2026-12-05T13:00:00Z",
        "expires": "2026-12-13T13:00:00Z",
        "expires_at": 1_796_000_000,
        "key": backup_transfer.key_text(backup_keys.new_key()),
    }
    with pytest.raises(InvalidArgument):
        node1.client.keep_key({**good, **fields, "backup_id": "0123456789abcdef"})
    assert backup_keys.all_keys(node1.config) == []


def test_a_release_leaves_no_volume_or_socket_directory_and_logs_no_deletion(nodes):
    node1, _ = nodes
    node1.client.prepare("praxis", META)

    node1.client.release("praxis")

    assert node1.engine.volumes(node1.config.labels(facility="praxis")) == []
    assert not node1.config.facility("praxis").socket_dir.exists()
    assert not (node1.config.home / "deletions.log").exists()


def test_a_backup_file_outside_the_three_is_not_served(nodes):
    node1, _ = nodes
    with pytest.raises(InvalidArgument):
        node1.client.download("0123456789abcdef", "passwd.txt", io.BytesIO())
    assert json.dumps(node1.client.held_backups()) == "[]"


def test_forget_destroys_the_facilitys_keys_and_held_backups_on_the_node(nodes):
    node1, node2 = nodes
    _facility_with_a_message(node1)
    backup_id, key = backup_keys.new_id(), backup_keys.new_key()
    node1.client.backup("praxis", backup_id, key)
    record = backup_keys.BackupKey(
        backup_id, "praxis", "2026-12-05T13:00:00Z", "2026-12-13T13:00:00Z", 1_796_000_000, key
    )
    node1.client.keep_key(backup_transfer.key_fields(record))

    forgot = node1.client.forget("praxis")

    assert (forgot["keys"], forgot["held"]) == (1, 1)
    assert backup_keys.all_keys(node1.config) == [] and backup_transfer.held(node1.config) == []

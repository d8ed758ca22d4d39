"""Tombstones on every manager: a node's supervisor collects a facility's drop files and pushes
them to the other managers' node APIs (real mutual TLS on loopback, each manager its own
MEDCELL_HOME); what a manager could not take waits in the node's outbox for the next round."""

from __future__ import annotations

import json
import threading

import pytest

from provisioner.host import tombstones
from provisioner.host.config import Config
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.errors import DockerError, InvalidArgument
from provisioner.host.node_api import MAX_TOMBSTONES, NodeClient
from provisioner.supervisor.backup_expiry import BackupExpiry
from provisioner.supervisor.node_api import NodeServer, NodeService
from provisioner.supervisor.tombstone_push import TombstonePush
from tests.clock import FakeClock
from tests.provisioner.test_node_api import _node_material

DAY = 86400


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    return _node_material(tmp_path_factory.mktemp("cluster"))


def tombstone(deleted_at: int, mark: str = "ab" * 32) -> dict:
    return {"mark": mark, "deleted_at": deleted_at, "reason": "patient"}


class Manager:
    """Another manager: its own MEDCELL_HOME and its node API on loopback."""

    def __init__(self, home, fake, tls_dir):
        self.config = Config(home=home)
        self.fake, self.tls_dir = fake, tls_dir
        self.server: NodeServer | None = None
        self.port = 0

    def start(self) -> None:
        service = NodeService(self.config, DockerBackend(self.fake))
        self.server = NodeServer(("127.0.0.1", self.port), self.tls_dir, service, read_seconds=1)
        self.port = self.server.port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kept(self, slug: str) -> list[dict]:
        return tombstones.FileTombstones(self.config).since(slug, 0)


@pytest.fixture
def managers(tmp_path, fake, tls_dir):
    started = [Manager(tmp_path / f"manager{i}", fake, tls_dir) for i in (2, 3)]
    for manager in started:
        manager.start()
    yield started
    for manager in started:
        manager.stop()


def _drop(config, slug: str, items: list[dict], name: str = "a" * 32) -> None:
    folder = tombstones.drop_dir(config, slug)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"tombstones": items}))


def _push(config, managers, tls_dir, clock, own="10.0.0.1") -> TombstonePush:
    addresses = [own] + [m.address for m in managers]
    return TombstonePush(config, lambda: (own, addresses), tls_dir, clock)


def test_what_a_node_collects_reaches_every_manager_once(config, managers, tls_dir):
    clock = FakeClock(2_000_000_000.0)
    _drop(config, "praxis", [tombstone(1_999_999_000)])
    expiry = BackupExpiry(config, clock, _push(config, managers, tls_dir, clock))
    assert tombstones.collect_all(config, expiry.tombstones) == 1
    pushed = expiry.push.run_once()
    assert pushed == {"pushed": ["praxis"], "waiting": [], "missed": {}}
    for manager in managers:
        assert manager.kept("praxis") == [tombstone(1_999_999_000)]
    assert tombstones.FileTombstones(config).since("praxis", 0) == [tombstone(1_999_999_000)]
    assert tombstones.outbox(config).slugs() == []  # nothing left to send
    # Sent again (a round cut short before it forgot them): each manager keeps it once.
    node = NodeClient(managers[0].address, tls_dir)
    assert node.add_tombstones("praxis", [tombstone(1_999_999_000)]) == 0
    assert managers[0].kept("praxis") == [tombstone(1_999_999_000)]


def test_a_manager_that_does_not_answer_gets_them_in_a_later_round(config, managers, tls_dir):
    clock = FakeClock(2_000_000_000.0)
    push = _push(config, managers, tls_dir, clock)
    store = tombstones.ReplicatingTombstones(config)
    store.add("praxis", [tombstone(1_999_999_000)])
    managers[1].stop()
    first = push.run_once()
    assert first["waiting"] == ["praxis"] and list(first["missed"]) == [managers[1].address]
    assert managers[0].kept("praxis") == [tombstone(1_999_999_000)]
    assert tombstones.outbox(config).slugs() == ["praxis"]
    managers[1].start()  # back, on the same port
    assert push.run_once()["pushed"] == ["praxis"]
    assert managers[1].kept("praxis") == [tombstone(1_999_999_000)]
    assert tombstones.outbox(config).slugs() == []


def test_without_its_engine_the_node_keeps_them_waiting(config, tls_dir):
    def no_engine():
        raise DockerError("no Docker Engine answers")

    push = TombstonePush(config, no_engine, tls_dir, FakeClock(2_000_000_000.0))
    tombstones.ReplicatingTombstones(config).add("praxis", [tombstone(1_999_999_000)])
    assert push.run_once()["waiting"] == ["praxis"]
    assert tombstones.outbox(config).slugs() == ["praxis"]


def test_what_waits_longer_than_any_backup_lives_is_dropped(config, tls_dir):
    now = 2_000_000_000
    push = TombstonePush(config, lambda: ("", []), tls_dir, FakeClock(float(now)))
    tombstones.outbox(config).add("praxis", [tombstone(now - tombstones.BACKUP_LIFETIME - 1)])
    assert push.run_once() == {"pushed": [], "waiting": [], "missed": {}}
    assert tombstones.outbox(config).slugs() == []


@pytest.mark.parametrize(
    "body, words",
    [
        ({"facility": "praxis", "tombstones": [{"mark": "Knie", "deleted_at": 1}]}, "mark"),
        ({"facility": "Praxis!", "tombstones": []}, "slug"),
        ({"facility": "praxis", "tombstones": {}}, "list"),
        ({"facility": "praxis"}, "needs tombstones"),
        ({"facility": "praxis", "tombstones": [], "note": "x"}, "unknown fields"),
    ],
)
def test_a_manager_refuses_anything_but_tombstones_whole(managers, tls_dir, body, words):
    node = NodeClient(managers[0].address, tls_dir)
    valid = [tombstone(1_999_999_000)]
    with pytest.raises(InvalidArgument, match=words):
        node._call("POST", "/v1/tombstones", {**body}, 10)
    with pytest.raises(InvalidArgument, match=f"more than {MAX_TOMBSTONES}"):
        node._call(
            "POST",
            "/v1/tombstones",
            {"facility": "praxis", "tombstones": valid * (MAX_TOMBSTONES + 1)},
            10,
        )
    assert managers[0].kept("praxis") == []


def test_a_deleted_facilitys_tombstones_are_forgotten_on_a_manager(managers, tls_dir):
    node = NodeClient(managers[0].address, tls_dir)
    node.add_tombstones("praxis", [tombstone(1_999_999_000), tombstone(1_999_999_001, "cd" * 32)])
    assert node.forget_tombstones("praxis") == 2
    assert managers[0].kept("praxis") == []


def test_in_a_cluster_they_are_kept_as_long_as_any_backup_can_live(config):
    now = 2_000_000_000.0
    store = tombstones.FileTombstones(config)
    old = int(now - tombstones.BACKUP_LIFETIME - 10)
    store.add("praxis", [tombstone(old, "cd" * 32), tombstone(int(now - 7 * DAY))])
    # No backup key of praxis on this manager: another manager may hold one.
    assert tombstones.expire(config, store, now, cluster=True) == 1
    assert store.since("praxis", 0) == [tombstone(int(now - 7 * DAY))]
    # On a single host its own keys decide: no backup, nothing to guard.
    assert tombstones.expire(config, store, now) == 1
    assert store.slugs() == []


def test_a_facility_destroyed_on_its_node_leaves_nothing_waiting(config):
    tombstones.ReplicatingTombstones(config).add("praxis", [tombstone(1_999_999_000)])
    tombstones.destroy_for(config, "praxis")
    assert tombstones.outbox(config).slugs() == []
    assert tombstones.FileTombstones(config).slugs() == []

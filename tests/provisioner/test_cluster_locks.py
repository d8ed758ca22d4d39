"""Cluster-wide facility locks (host/cluster_locks.py) over a fake Swarm config store: several
managers, each its own client, one Raft store. The lab's test_side_by_side.py races real ones."""

from __future__ import annotations

import threading

import pytest

from provisioner.host import locks
from provisioner.host.cluster_locks import (
    CLOCK_TOLERANCE,
    EXPIRES_LABEL,
    HOLDER_LABEL,
    LOCK_LABEL,
    SwarmLocks,
)
from provisioner.host.errors import Busy, DockerError
from provisioner.host.swarm import SwarmConfigs
from tests.clock import FakeClock
from tests.provisioner.fakeconfigs import ConfigClient, ConfigStore


@pytest.fixture
def store() -> ConfigStore:
    return ConfigStore()


def manager(config, store: ConfigStore, host: str, **kwargs) -> SwarmLocks:
    """One manager's view of the cluster's locks (its own engine client)."""
    return SwarmLocks(config, SwarmConfigs(ConfigClient(store)), host=host, **kwargs)


def test_both_implementations_are_the_one_interface(config, store):
    for implementation in (locks.HostLocks(config), manager(config, store, "node1")):
        assert isinstance(implementation, locks.FacilityLocks)
        with implementation.hold("praxis"):
            with pytest.raises(Busy):
                with implementation.hold("praxis"):
                    pass
        with implementation.hold("praxis"):
            pass  # released


def test_a_second_manager_waits_then_says_who_holds_it(config, store):
    locks.set_holder("medcell facility backup")
    first, second = manager(config, store, "node1"), manager(config, store, "node2")
    heard = []
    with first.hold("praxis"):
        with pytest.raises(Busy) as refused:
            with second.hold("praxis", wait=0.3, on_wait=heard.append):
                pass
    message = str(refused.value)
    assert "facility praxis is still held by medcell facility backup on node1" in message
    assert "gave up after waiting 0.3 s" in message
    assert heard == [
        f"facility praxis is held by {message.split('held by ')[1].split(';')[0]}; "
        "waiting up to 0.3 s"
    ]
    with second.hold("praxis"):
        pass  # free once the first released it
    assert store.by_name == {}


def test_other_facilities_do_not_wait(config, store):
    first, second = manager(config, store, "node1"), manager(config, store, "node2")
    with first.hold("praxis"), second.hold("zahn"):
        assert set(store.by_name) == {f"{config.prefix}-lock-{s}" for s in ("praxis", "zahn")}


def test_managers_racing_on_one_slug_take_turns(config, store):
    inside, most, rounds = [0], [0], 40
    guard = threading.Lock()

    def work(host: str) -> None:
        mine = manager(config, store, host)
        for _ in range(rounds):
            with mine.hold("praxis", wait=60):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work, args=(f"node{i}",)) for i in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert store.by_name == {}


def test_the_lock_holds_nothing_but_who_and_until_when(config, store):
    locks.set_holder("medcell facility rotate-key")
    with manager(config, store, "node1").hold("praxis"):
        (held,) = store.by_name.values()
    labels = held["Spec"]["Labels"]
    assert set(labels) == {LOCK_LABEL, HOLDER_LABEL, EXPIRES_LABEL}
    assert labels[LOCK_LABEL] == "praxis"
    assert labels[HOLDER_LABEL].startswith("medcell facility rotate-key on node1 (pid ")
    assert held["Spec"]["Data"] == "bWVkY2VsbCBsb2Nr"  # "medcell lock", the same for all


def test_a_crashed_holders_lock_is_taken_over_after_its_lease(config, store):
    clock = FakeClock(1_000_000.0)
    crashed = manager(config, store, "node3", clock=clock, lease=60)
    held = crashed.hold("praxis")
    held.__enter__()  # and its process dies: nobody renews or releases it
    taker = manager(config, store, "node1", clock=clock, lease=60, sleep=clock.advance)
    with pytest.raises(Busy):
        with taker.hold("praxis", wait=30):
            pass
    clock.now = 1_000_000.0 + 60 + CLOCK_TOLERANCE + 1
    with taker.hold("praxis"):
        (lock,) = store.by_name.values()
        assert "on node1" in lock["Spec"]["Labels"][HOLDER_LABEL]


def test_a_live_holder_renews_its_lease(config, store):
    holder = manager(config, store, "node1", lease=0.4)
    with holder.hold("praxis"):
        (lock,) = store.by_name.values()
        first = int(lock["Spec"]["Labels"][EXPIRES_LABEL])
        renewed = threading.Event()
        while not renewed.is_set():  # the renewer relabels every lease / 4
            renewed.wait(0.05)
            if lock["Version"]["Index"] > 2:
                renewed.set()
        assert int(lock["Spec"]["Labels"][EXPIRES_LABEL]) >= first
        with pytest.raises(Busy):  # a live holder's lock is never taken over
            with manager(config, store, "node2").hold("praxis"):
                pass
    assert store.by_name == {}


def test_a_release_no_manager_answers_leaves_the_lock_to_expire(config, store):
    clock = FakeClock(1_000_000.0)
    pauses = []
    holder = manager(config, store, "node1", clock=clock, lease=60, sleep=pauses.append)
    failing = holder.configs.client.api

    def unreachable(ref):
        raise DockerError("no Docker Engine answers")

    with pytest.raises(ValueError, match="the command's own error"):
        with holder.hold("praxis"):
            failing.remove_config = unreachable
            raise ValueError("the command's own error")
    assert len(store.by_name) == 1  # still there, until its lease is over
    assert 5 <= sum(pauses) <= 15  # it tried again for some seconds, not for ever
    clock.now += 60 + CLOCK_TOLERANCE + 1
    with manager(config, store, "node2", clock=clock).hold("praxis"):
        pass


def test_a_release_while_the_managers_elect_a_leader_is_tried_again(config, store):
    """Right after a node returns the managers may answer nothing for a few seconds; the lock
    must not stay behind for a whole lease then."""
    pauses = []
    holder = manager(config, store, "node1", sleep=pauses.append)
    api = holder.configs.client.api
    remove = api.remove_config
    failures = iter([DockerError("rpc error: The swarm does not have a leader")] * 2)

    def electing(ref):
        error = next(failures, None)
        if error is not None:
            raise error
        return remove(ref)

    with holder.hold("praxis"):
        api.remove_config = electing
    assert store.by_name == {}
    assert len(pauses) == 2

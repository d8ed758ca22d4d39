"""Cluster-wide facility locks: two commands on one facility, on any managers, one after the other.

A lock is a Swarm config object named `<prefix>-lock-<slug>`. Creating a config goes through the
managers' Raft log and its name is unique, so of two managers creating the same name at once
exactly one succeeds: that one holds the lock, and releases it by removing the config (by its
id, so never someone else's). Its labels say who holds it (command, host, pid) and until when
(unix seconds): the holder renews that expiry every LEASE_SECONDS / 4 while it works, so a
holder that crashed, or whose host was lost, leaves a lock that another command takes over once
it is LEASE_SECONDS (and the clock tolerance) past its expiry. Nothing secret is ever in it:
every manager keeps every config.

The same interface as the single host's locks (host/locks.py `FacilityLocks`). A worker's
supervisor, whose engine has no Raft store, holds one through a manager's node API
(host/remote_locks.py): the manager takes, renews and releases it with `take`, `renew` and
`release`, the asking node's name in NODE_LABEL, so that only that node renews or releases it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from provisioner.host import locks
from provisioner.host.config import Config
from provisioner.host.errors import Busy, DockerError
from provisioner.host.swarm import LockConfig, SwarmConfigs

LEASE_SECONDS = 60.0  # a lock not renewed for this long is free to take over
CLOCK_TOLERANCE = 5.0  # managers' clocks agree to better than this (Swarm needs it anyway)
POLL_SECONDS = 0.25
RELEASE_ATTEMPTS, RELEASE_PAUSE = 10, 1.0  # a Raft election takes a few seconds
HOLDER_LABEL = "medcell.lock.holder"
EXPIRES_LABEL = "medcell.lock.expires"
LOCK_LABEL = "medcell.lock"
NODE_LABEL = "medcell.lock.node"  # the node a manager holds it for (host/remote_locks.py)
TAKE_ATTEMPTS = 3  # a lock removed or taken over between one look and the next
HOLDER_CHARS = 200


class SwarmLocks:
    """Facility locks held in the Swarm's Raft store (see the module's docstring)."""

    def __init__(
        self,
        config: Config,
        configs: SwarmConfigs,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease: float = LEASE_SECONDS,
        host: str | None = None,
    ):
        self.config, self.configs = config, configs
        self.clock, self.sleep, self.lease = clock, sleep, lease
        self.host = host or socket.gethostname()

    def name(self, slug: str) -> str:
        return f"{self.config.prefix}-lock-{slug}"

    @contextmanager
    def hold(
        self, slug: str, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the facility's lock; Busy (naming the holder) if it is not free within `wait`."""
        name = self.name(slug)
        deadline = self.clock() + wait
        told = on_wait is None
        while True:
            labels = self._labels(slug)
            config_id = self.configs.create(name, labels)
            if config_id is not None:
                break
            held = self.configs.get(name)
            if held is not None and self._expired(held):
                # Removed by its id: of several takers only one removes it, and all of them
                # then race to create it anew, which again exactly one wins.
                self.configs.remove(held.id)
                continue
            if self.clock() >= deadline:
                raise Busy(_busy_message(slug, held, wait))
            if not told:
                told = True
                on_wait(f"facility {slug} is held by {_holder(held)}; waiting up to {wait:g} s")
            self.sleep(POLL_SECONDS)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(slug, name, config_id, stop), daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self._release(config_id)

    def take(self, slug: str, node: str) -> str:
        """Take the facility's lock for another node's supervisor, at once: its config id, or
        Busy naming the holder. It lasts one lease unless `renew`ed."""
        name = self.name(slug)
        labels = self._labels(slug, f"the supervisor of node {node}")
        labels[NODE_LABEL] = node
        held = None
        for _ in range(TAKE_ATTEMPTS):
            config_id = self.configs.create(name, labels)
            if config_id is not None:
                return config_id
            held = self.configs.get(name)
            if held is not None and not self._expired(held):
                break
            if held is not None:
                self.configs.remove(held.id)
        raise Busy(_busy_message(slug, held, 0.0))

    def held_for(self, slug: str, node: str, config_id: str) -> LockConfig | None:
        """The facility's lock, if it is the one `take` gave `node` (by its id), else None."""
        held = self.configs.get(self.name(slug))
        if held is None or held.id != config_id or held.labels.get(NODE_LABEL) != node:
            return None
        return held

    def renew(self, slug: str, node: str, config_id: str) -> bool:
        """Push the expiry of the lock `take` gave `node` forward; False if it is not held."""
        held = self.held_for(slug, node, config_id)
        if held is None:
            return False
        labels = self._labels(slug, f"the supervisor of node {node}")
        labels[NODE_LABEL] = node
        return bool(self.configs.relabel(self.name(slug), held, labels))

    def release(self, slug: str, node: str, config_id: str) -> bool:
        """Remove the lock `take` gave `node`; False if it is not held (expired, taken over)."""
        if self.held_for(slug, node, config_id) is None:
            return False
        return bool(self.configs.remove(config_id))

    def _release(self, config_id: str) -> None:
        """Remove the lock, trying again for a few seconds: right after a node returns, the
        managers may be electing a leader, and a lock left behind would hold the next command on
        this facility for a whole lease. If none answers by then, the lock expires after its
        lease."""
        for attempt in range(RELEASE_ATTEMPTS):
            try:
                self.configs.remove(config_id)
                return
            except DockerError:
                if attempt + 1 < RELEASE_ATTEMPTS:
                    self.sleep(RELEASE_PAUSE)

    def _labels(self, slug: str, holder: str = "") -> dict[str, str]:
        holder = holder or f"{locks.holder()} on {self.host} (pid {os.getpid()})"
        return {
            LOCK_LABEL: slug,
            HOLDER_LABEL: holder[:HOLDER_CHARS],
            EXPIRES_LABEL: str(int(self.clock() + self.lease)),
        }

    def _expired(self, held: LockConfig) -> bool:
        try:
            expires = float(held.labels.get(EXPIRES_LABEL, ""))
        except ValueError:
            expires = 0.0  # no valid expiry: not one of ours, or written half; take it over
        return self.clock() > expires + CLOCK_TOLERANCE

    def _renew(self, slug: str, name: str, config_id: str, stop: threading.Event) -> None:
        """Push the expiry forward while the lock is held (a quarter of the lease at a time)."""
        while not stop.wait(self.lease / 4):
            held = self.configs.get(name)
            if held is None or held.id != config_id:
                return  # taken over (this holder was too slow to renew): nothing to renew
            self.configs.relabel(name, held, self._labels(slug))


def _holder(held: LockConfig | None) -> str:
    raw = (held.labels.get(HOLDER_LABEL) if held else "") or ""
    who = "".join(c for c in raw[:HOLDER_CHARS] if c.isprintable()).strip()
    return who or "another medcell command"


def _busy_message(slug: str, held: LockConfig | None, wait: float) -> str:
    if wait <= 0:
        return f"facility {slug} is being changed by {_holder(held)}"
    return f"facility {slug} is still held by {_holder(held)}; gave up after waiting {wait:g} s"

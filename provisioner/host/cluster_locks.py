"""Cluster-wide facility locks: two commands on one facility, on any managers, one after the other.

A lock is a Swarm config object named `<prefix>-lock-<slug>`. Creating a config goes through the
managers' Raft log and its name is unique, so of two managers creating the same name at once
exactly one succeeds: that one holds the lock, and releases it by removing the config (by its
id, so never someone else's). Its labels say who holds it (command, host, pid) and until when
(unix seconds): the holder renews that expiry every LEASE_SECONDS / 4 while it works, so a
holder that crashed, or whose host was lost, leaves a lock that another command takes over once
it is LEASE_SECONDS (and the clock tolerance) past its expiry. Nothing secret is ever in it:
every manager keeps every config.

The same interface as the single host's locks (host/locks.py `FacilityLocks`).
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

    def _labels(self, slug: str) -> dict[str, str]:
        holder = f"{locks.holder()} on {self.host} (pid {os.getpid()})"
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

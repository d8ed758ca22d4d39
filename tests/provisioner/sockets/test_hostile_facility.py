"""A facility that lies or stalls must not cost any other facility its deadlines: the supervisor
with fake facilities on real unix sockets, one of them hostile, and the test's clock."""

from __future__ import annotations

import threading

from provisioner.host import backup_keys, state_file
from provisioner.host.backup_keys import BackupKey
from provisioner.supervisor.service import Supervisor
from tests.clock import FakeClock
from tests.provisioner.sockets.fakes import Engine, wait_until

BACKUP_ID = "0123456789abcdef"


class Running:
    """The supervisor's own loop (`run()`) in a thread, as in production; ticks are counted."""

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.ticks = 0
        tick = supervisor.scheduler.tick

        def counted() -> None:
            tick()
            self.ticks += 1

        supervisor.scheduler.tick = counted
        self.thread = threading.Thread(target=supervisor.run, daemon=True)
        self.thread.start()

    def seconds(self, clock: FakeClock, count: int) -> None:
        """Move the clock one second at a time, each time waiting for two whole ticks of the loop
        (a loop stuck in one tick fails here)."""
        for _ in range(count):
            clock.advance(1)
            seen = self.ticks
            wait_until(lambda seen=seen: self.ticks >= seen + 2)

    def stop(self) -> None:
        self.supervisor.stop()
        self.thread.join(10)


def expiring_key(config, clock: FakeClock, seconds: int) -> None:
    created = "2027-01-15T08:00:00Z"
    backup_keys.save(
        config,
        BackupKey(BACKUP_ID, "other", created, created, int(clock.now) + seconds, bytes(32)),
    )


def key_destroyed(config) -> bool:
    return backup_keys.load(config, BACKUP_ID) is None


def test_a_facility_answering_nan_stops_neither_deadlines_nor_backup_key_expiry(
    config, engine: Engine, make, clock
):
    liar = engine.add_facility("liar")
    liar.idle = 3600.0
    liar.next_deadline = float("nan")  # the fake writes it as the bare token NaN
    engine.add_facility("other", running=False, asleep=True, wake_at=clock.now + 100)
    expiring_key(config, clock, 50)
    running = Running(make(tick=0.001))
    try:
        running.seconds(clock, 60)
        assert key_destroyed(config)
        running.seconds(clock, 30)
        # Its wake is due 10 s before its deadline; the wake itself runs on the wake pool.
        wait_until(lambda: "medcell-other" in engine.started)
    finally:
        running.stop()
    st = state_file.load(config, "liar")
    # Its answers were failed probes, not data: never put to sleep on a deadline of NaN.
    assert not st.asleep and st.wake_at is None and st.health == "unhealthy"
    assert "NaN" not in (config.state_dir / "liar.json").read_text()


def test_nan_already_on_disk_after_a_restart_wakes_that_facility_once_and_blocks_nobody(
    config, engine: Engine, make, clock
):
    engine.add_facility("liar", running=False, asleep=True)
    path = config.state_dir / "liar.json"
    path.write_text(path.read_text().replace('"wake_at": null', '"wake_at": NaN'))
    assert "NaN" in path.read_text()
    engine.add_facility("other", running=False, asleep=True, wake_at=clock.now + 30)
    expiring_key(config, clock, 5)
    running = Running(make(tick=0.001))
    try:
        running.seconds(clock, 10)
        assert key_destroyed(config)
        # No deadline known: woken at once to be asked for one, not looped on, not forgotten.
        assert engine.started[0] == "medcell-liar"
        running.seconds(clock, 10)
        wait_until(lambda: "medcell-other" in engine.started)
        assert engine.started.count("medcell-liar") == 1
    finally:
        running.stop()


def test_a_stalling_facility_does_not_delay_another_facilitys_deadline_wake(
    config, engine: Engine, make, clock
):
    stop, hung_up = threading.Event(), threading.Event()

    def trickle(stream) -> None:
        # One byte at a time, never a whole answer: a per-read timeout never fires.
        try:
            stream.write(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                stream.write(b"X")
                stream.flush()
                stop.wait(0.5)
        except OSError:
            hung_up.set()

    slow = engine.add_facility("slow")
    slow.raw_status = trickle
    engine.add_facility("other", running=False, asleep=True, wake_at=clock.now + 20)
    supervisor = make(tick=0.001)
    # A deadline far longer than the test: only probing off the scheduler's thread passes.
    supervisor.scheduler.probe_timeout = 120.0
    running = Running(supervisor)
    try:
        wait_until(lambda: slow.status_calls == 1)
        running.seconds(clock, 10)
        wait_until(lambda: "medcell-other" in engine.started)
        # ... while the slow facility's status exchange was still going on.
        assert not hung_up.is_set() and slow.status_calls == 1
    finally:
        stop.set()
        running.stop()

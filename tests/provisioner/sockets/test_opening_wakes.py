"""Wakes before opening time, from the opening hours a facility reported (fake clock, fake engine,
fake facilities on real sockets): each practice is awake when it opens, the wakes are spread over
the minutes before, and a full host is never made room for them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from provisioner.host import lifecycle, opening, state_file
from provisioner.host.docker_backend import DockerBackend
from provisioner.supervisor.service import Supervisor
from tests.clock import FakeClock
from tests.provisioner.sockets.test_supervisor import settle

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_8 = 8 * 60  # minutes after Monday 00:00
TUESDAY_14 = 24 * 60 + 14 * 60


def berlin(*when: int) -> float:
    return datetime(*when, tzinfo=BERLIN).timestamp()


@pytest.fixture
def at_dawn(config, engine, gateway):
    """A supervisor whose clock says Monday 18 January 2027, 07:00 in Berlin (idle time 1 h)."""
    made = []

    def start(**options) -> Supervisor:
        settings = {"idle_timeout": 3600, "timezone": "Europe/Berlin", **options}
        supervisor = Supervisor(
            dataclasses.replace(config, **settings),
            DockerBackend(engine),
            clock=FakeClock(berlin(2027, 1, 18, 7, 0)),
        )
        made.append(supervisor)
        settle(supervisor)
        return supervisor

    yield start
    for supervisor in made:
        supervisor.close()


def run_until(supervisor: Supervisor, until: float, step: float = 30) -> dict[str, float]:
    """Tick as the supervisor's loop does until `until`; when each facility was started."""
    started: dict[str, float] = {}
    engine = supervisor.backend.client
    while supervisor.clock() < until:
        supervisor.clock.advance(step)
        supervisor.scheduler.tick()
        supervisor.openings.tick(supervisor.clock())
        settle(supervisor)
        for name in engine.started:
            started.setdefault(name.removeprefix("medcell-"), supervisor.clock())
    return started


def test_a_sleeping_practice_is_woken_in_the_twenty_minutes_before_it_opens(engine, at_dawn):
    engine.add_facility("praxis", running=False, asleep=True, opens=[MONDAY_8])
    engine.add_facility("nohours", running=False, asleep=True)
    supervisor = at_dawn()

    started = run_until(supervisor, berlin(2027, 1, 18, 8, 0))

    assert berlin(2027, 1, 18, 7, 40) - 30 <= started["praxis"] < berlin(2027, 1, 18, 8, 0)
    assert "nohours" not in started
    assert supervisor.scheduler.entries["praxis"].mode == "awake"


def test_wakes_before_a_common_opening_time_are_spread_out(engine, at_dawn):
    slugs = [f"p{i}" for i in range(12)]
    for slug in slugs:
        engine.add_facility(slug, running=False, asleep=True, opens=[MONDAY_8])
    supervisor = at_dawn()

    started = run_until(supervisor, berlin(2027, 1, 18, 8, 0), step=60)

    assert sorted(started) == sorted(slugs)
    minutes = {int(t // 60) for t in started.values()}
    assert len(minutes) >= 6  # not one burst: twelve wakes over at least six different minutes


def test_a_pre_opening_wake_never_puts_another_facility_to_sleep(engine, at_dawn):
    engine.add_facility("busy", idle=None).idle = 3000.0  # awake, unused for 50 minutes
    engine.add_facility("praxis", running=False, asleep=True, opens=[MONDAY_8])
    supervisor = at_dawn(max_awake=1)

    started = run_until(supervisor, berlin(2027, 1, 18, 8, 0))

    assert "praxis" not in started
    assert engine.stops == []


def test_the_window_stays_inside_the_idle_time_so_it_is_awake_when_it_opens(engine, at_dawn):
    slugs = [f"q{i}" for i in range(8)]
    for slug in slugs:
        engine.add_facility(slug, running=False, asleep=True, idle=600, opens=[TUESDAY_14])
    supervisor = at_dawn()

    started = run_until(supervisor, berlin(2027, 1, 19, 14, 0), step=60)

    opens = berlin(2027, 1, 19, 14, 0)
    # Idle time 10 minutes: woken at most 7.5 minutes before 14:00 on Tuesday, not on Monday.
    assert all(opens - 7.5 * 60 - 60 <= t < opens for t in started.values())
    assert sorted(started) == sorted(slugs)


def test_hours_reported_before_sleeping_are_kept_for_the_wake(config, engine, backend, gateway):
    app = engine.add_facility("praxis")
    app.idle, app.opens = 500.0, [MONDAY_8, TUESDAY_14]
    assert lifecycle.put_to_sleep(config, backend, "praxis", require_idle=60)
    assert state_file.load(config, "praxis").opens == [MONDAY_8, TUESDAY_14]


@pytest.mark.parametrize(
    "reported",
    [None, "08:00", [480.0], [True], [-1], [7 * 24 * 60], [float("nan")], list(range(43)), {}],
)
def test_opening_hours_a_facility_reports_are_checked_before_use(reported):
    assert opening.parse_opens(reported) == ()


def test_next_opening_follows_the_time_zone_across_the_clock_change():
    # Sunday 28 March 2027: Berlin moves from UTC+1 to UTC+2; Monday opens at 08:00 local.
    sunday = berlin(2027, 3, 28, 12, 0)
    assert opening.next_opening([MONDAY_8], sunday, BERLIN) == berlin(2027, 3, 29, 8, 0)
    assert datetime.fromtimestamp(berlin(2027, 3, 29, 8, 0), BERLIN).utcoffset().seconds == 7200


def test_without_time_zone_data_the_supervisor_runs_on_without_opening_wakes(engine, at_dawn):
    engine.add_facility("praxis", running=False, asleep=True, opens=[MONDAY_8])
    supervisor = at_dawn(timezone="Nowhere/Atlantis")
    assert run_until(supervisor, berlin(2027, 1, 18, 8, 0), step=120) == {}

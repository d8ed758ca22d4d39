"""The supervisor beside operators' commands: a facility a command holds is skipped and retried,
and never keeps the supervisor from another facility's deadline."""

from provisioner.host import state_file
from tests.provisioner.lockholder import held_elsewhere
from tests.provisioner.sockets.test_supervisor import run_for, settle, status_of


def test_a_held_facility_does_not_delay_another_facilitys_deadline(config, engine, make, clock):
    # One wake at a time: a wake that waited for the held lock would hold up the other one.
    supervisor = make(max_waking=1)
    engine.add_facility("held", running=False, asleep=True, wake_at=clock.now + 5)
    engine.add_facility("other", running=False, asleep=True, wake_at=clock.now + 6)
    with held_elsewhere(config, "held", "medcell facility backup"):
        settle(supervisor)
        assert status_of(engine, "other") == "running"  # woken for its deadline
        assert status_of(engine, "held") == "exited"  # skipped while the command holds it
        run_for(supervisor, clock, 60)  # a long command (a backup)
        assert status_of(engine, "held") == "exited"
    # The command has ended: the skipped facility's deadline is taken up again within seconds,
    # not after a back-off grown while it was held.
    run_for(supervisor, clock, 6)
    assert status_of(engine, "held") == "running"
    assert not state_file.load(config, "held").asleep

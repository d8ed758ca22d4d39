"""The supervisor relays mail from its probes and drains a facility's outbox before it sleeps:
the real facility app on its socket, aiosmtpd on loopback, the fake engine for Docker."""

import time

import pytest
import requests
from aiosmtpd.controller import Controller

from devsupport import eventually, free_port
from provisioner.host import facility_http, routes, smtp, state_file
from provisioner.host.docker_backend import DockerBackend
from provisioner.host.smtp import SmtpSettings
from provisioner.supervisor.service import Supervisor
from tests.clock import FakeClock
from tests.provisioner.mail_support import Inbox, running_facility

SLUG = "praxis"


def until(condition, timeout: float = 15) -> bool:
    return eventually(condition, bool, timeout)


def probe(supervisor: Supervisor) -> None:
    """A tick, and another once the probes it started have answered (they run on their pool)."""
    supervisor.scheduler.tick()
    assert until(supervisor.scheduler.probes.settled)
    supervisor.scheduler.tick()


def put_container(engine, config, idle: int) -> object:
    """The facility's container in the fake engine; its process is the real app on the socket."""
    container = engine.containers.create(
        config.facility_image,
        name=config.facility(SLUG).container,
        labels=config.labels(facility=SLUG, role="facility"),
    )
    container.start()
    state_file.save(config, SLUG, state_file.FacilityState(idle=idle))
    routes.set_route(config, SLUG, "running")
    return container


@pytest.mark.process
def test_a_probe_that_sees_mail_waiting_relays_it_and_then_the_facility_may_sleep(
    config, engine, gateway
):
    home = config.home.parent
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp.save(
        config.home, SmtpSettings("smtp", "127.0.0.1", controller.port, "noreply@medcell.example")
    )
    clock = FakeClock(now=time.time())
    try:
        with running_facility(home, config, SLUG) as (server, session):
            container = put_container(engine, config, idle=1)
            outbox_when_stopped = []
            original_stop = container.stop

            def stop(timeout: int = 10) -> None:
                outbox_when_stopped.append(facility_http.status(config, SLUG).outbox)
                original_stop(timeout)

            container.stop = stop
            session.put(f"{server.url}/api/v1/notifications", json={"email": "team@praxis.example"})
            conv = session.post(f"{server.url}/api/v1/conversations", json={}).json()
            response = requests.post(
                f"{server.url}/api/v1/conversations/{conv['id']}/messages",
                json={"body": "Frage zum Befund"},
                headers={"Authorization": f"Bearer {conv['patient_token']}"},
            )
            assert response.status_code == 201
            assert facility_http.status(config, SLUG).outbox == 1
            # Idle for its idle time (1 s): only the waiting mail keeps it awake.
            assert until(lambda: facility_http.status(config, SLUG).idle_seconds > 1.2)

            supervisor = Supervisor(config, DockerBackend(engine), clock=clock)
            try:
                assert supervisor.mail is not None
                probe(supervisor)  # reconcile and the first probe: not quiet
                assert until(lambda: len(inbox.mails) == 1, timeout=10)
                assert until(supervisor.mail.pool.settled)
                assert container.status == "running"
                # The next probe, 5 s on, finds the outbox empty and puts the facility to sleep.
                # Not put to sleep while mail waits; the next probe (5 s on) finds the outbox
                # empty and puts the facility to sleep.
                for _ in range(4):
                    clock.advance(6)
                    probe(supervisor)
                    assert until(supervisor.sleeps.settled)
                    if container.status != "running":
                        break
            finally:
                supervisor.close()
            assert container.status == "exited"
            assert outbox_when_stopped == [0]
    finally:
        controller.stop()
    ((_, recipients, message),) = inbox.mails
    assert recipients == ["team@praxis.example"]
    assert "Frage zum Befund" not in message.as_string()


def test_without_smtp_settings_the_supervisor_relays_nothing(config, engine, gateway):
    supervisor = Supervisor(config, DockerBackend(engine), clock=FakeClock())
    try:
        assert supervisor.mail is None
    finally:
        supervisor.close()

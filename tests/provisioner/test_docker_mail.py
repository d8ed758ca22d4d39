"""Mail on the real engine: `medcell up` with MEDCELL_SMTP_URL, a facility without any network,
and the supervisor relaying its outbox to an SMTP server on the supervisor's own network.

The SMTP server is a container of this installation (Python's smtpd in the supervisor image,
printing what it receives) on the installation's mail network: no traffic leaves the machine.
"""

import ast
import json
import os
import time
from email import message_from_bytes, policy
from pathlib import Path

import docker
import pytest
import requests

import devsupport

pytestmark = pytest.mark.docker

SECRET_TEXT = "Befund-Schilddruese-TSH-2-1"
SECRET_TITLE = "Herr-Beispiel-Hals"


@pytest.fixture
def installation(tmp_path):
    inst = devsupport.Installation(tmp_path / "home", stem="mcmail")
    inst.sink = f"{inst.prefix}-smtp"
    inst.env["MEDCELL_SMTP_URL"] = f"smtp://{inst.sink}:1025"
    inst.env["MEDCELL_MAIL_FROM"] = "noreply@medcell.example"
    inst.docker = docker.from_env()
    try:
        yield inst
    finally:
        inst.remove()


def start_sink(inst) -> None:
    """The SMTP server, on the mail network `medcell up` made for the supervisor."""
    tag = os.environ.get("MEDCELL_IMAGE_TAG", "latest")
    inst.docker.containers.run(
        f"medcell-supervisor:{tag}",
        ["python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", "0.0.0.0:1025"],
        name=inst.sink,
        network=f"{inst.prefix}-mail",
        labels={"medcell.instance": inst.prefix},
        user="10001:10001",
        read_only=True,
        cap_drop=["ALL"],
        detach=True,
    )


def sunk_mails(log: str) -> list:
    """The mails smtpd's DebuggingServer printed, one repr()'d bytes line per line of each."""
    mails = []
    for chunk in log.split("---------- MESSAGE FOLLOWS ----------")[1:]:
        lines = chunk.split("------------ END MESSAGE ------------")[0].strip().splitlines()
        raw = b"\r\n".join(ast.literal_eval(line) for line in lines)
        mails.append(message_from_bytes(raw, policy=policy.default))
    return mails


def session_for(inst) -> requests.Session:
    return inst.session()


def test_a_patients_message_reaches_the_staff_by_mail_without_content(installation):
    inst = installation
    up = inst.medcell("up")
    assert up["mail"] == "on"
    start_sink(inst)
    supervisor = inst.docker.containers.get(inst.supervisor)
    assert list(supervisor.attrs["NetworkSettings"]["Networks"]) == [f"{inst.prefix}-mail"]
    # Only its metrics port is published, on loopback (the installation's MEDCELL_METRICS_BIND).
    port = inst.metrics_port
    bindings = {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert supervisor.attrs["HostConfig"]["PortBindings"] == bindings

    created = inst.create("praxis", "--name", "Praxis Dr. Müller", "--idle", "15s")
    facility = inst.docker.containers.get(inst.container("praxis"))
    assert facility.attrs["HostConfig"]["NetworkMode"] == "none"
    assert "MEDCELL_MAIL=on" in facility.attrs["Config"]["Env"]
    for container in (facility, supervisor):
        inspected = str(container.attrs)
        assert "MEDCELL_SMTP_URL" not in inspected and f"{inst.sink}:1025" not in inspected

    base = f"{inst.origin('praxis')}"
    client = session_for(inst)
    token = client.post(
        f"{base}/api/v1/login",
        json={"username": created["admin_user"], "password": created["admin_password"]},
        timeout=30,
    ).json()["token"]
    staff = {"Authorization": f"Bearer {token}"}
    response = client.put(
        f"{base}/api/v1/notifications", json={"email": "team@praxis.example"}, headers=staff
    )
    assert response.json() == {"enabled": True, "email": "team@praxis.example"}
    conv = client.post(
        f"{base}/api/v1/conversations", json={"title": SECRET_TITLE}, headers=staff, timeout=30
    ).json()
    response = client.post(
        f"{base}/api/v1/conversations/{conv['id']}/messages",
        json={"body": SECRET_TEXT},
        headers={"Authorization": f"Bearer {conv['patient_token']}"},
        timeout=30,
    )
    assert response.status_code == 201

    # The supervisor probes an awake facility at the latest when its idle time could be up.
    deadline = time.monotonic() + 90
    while "team@praxis.example" not in inst.logs(inst.sink) and time.monotonic() < deadline:
        time.sleep(1)
    received = inst.logs(inst.sink)
    (message,) = sunk_mails(received)
    assert message["To"] == "team@praxis.example"
    assert message["From"] == "noreply@medcell.example"
    assert message["Subject"] == (
        "Neue Nachricht bei Praxis Dr. Müller / New message at Praxis Dr. Müller"
    )
    # The link is the staff list on the facility's own origin, from configuration only.
    assert f"{inst.origin('praxis')}/staff/" in message.get_content()
    for secret in (SECRET_TEXT, SECRET_TITLE, conv["id"], conv["patient_token"]):
        assert secret not in received and secret not in message.as_string()

    relay_log = inst.logs(inst.supervisor)
    events = [json.loads(line) for line in relay_log.splitlines() if line.startswith("{")]
    assert "mail_relayed" in [e.get("event") for e in events]
    assert "team@praxis.example" not in relay_log and "@praxis" not in relay_log
    facility_log = inst.logs(inst.container("praxis"))
    assert "team@praxis.example" not in facility_log and SECRET_TEXT not in facility_log


def test_up_without_smtp_takes_the_mail_network_away_again(installation):
    inst = installation
    inst.medcell("up")
    assert inst.docker.networks.list(names=[f"{inst.prefix}-mail"])
    del inst.env["MEDCELL_SMTP_URL"]
    assert inst.medcell("up")["mail"] == "off"
    supervisor = inst.docker.containers.get(inst.supervisor)
    # Only its metrics network is left (no route out): the mail network is gone.
    assert list(supervisor.attrs["NetworkSettings"]["Networks"]) == [f"{inst.prefix}-metrics"]
    assert not [n for n in inst.docker.networks.list() if n.name == f"{inst.prefix}-mail"]
    assert not (Path(inst.home) / "secrets" / "smtp.json").exists()

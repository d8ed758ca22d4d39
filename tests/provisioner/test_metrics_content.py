"""The metrics are content-free: a real facility server (the image's own command) on its unix
socket does a workload full of secrets with a retention of seconds, its deletion job deletes the
expired conversations, and the supervisor's metrics learn that over the socket exactly as its
probes do. The deletion is in the ≤ 60 s bucket; nothing of the workload is in the scrape."""

import os
import shutil

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devsupport import FacilityServer
from provisioner.host import facility_http
from provisioner.host.config import Config
from provisioner.supervisor.metrics import Metrics
from tests.provisioner.sockets.fakes import short_home, wait_until

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

SLUG = "praxis"


@pytest.fixture
def installation():
    home = short_home()
    config = Config(home=home / "home", facility_uid=os.getuid())
    server = FacilityServer(
        home / "facility", SLUG, socket=config.facility_socket(SLUG), MEDCELL_RETENTION="3s"
    )
    server.admin_login = server.create_admin()
    server.start()
    yield config, server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_a_scrape_after_a_workload_holds_none_of_its_secrets(installation):
    config, server = installation
    secrets = [server.admin_login["username"], server.admin_login["password"]]
    login = requests.post(server.url + "/api/v1/login", json=server.admin_login, timeout=30)
    staff_token = login.json()["token"]
    staff = {"Authorization": f"Bearer {staff_token}"}
    secrets.append(staff_token)
    for n in range(3):
        title, body = f"Befund Geheim-{n}", f"Hämoglobin 13,{n} Geheimwert-{n}"
        made = requests.post(
            server.url + "/api/v1/conversations", json={"title": title}, headers=staff, timeout=30
        ).json()
        sent = requests.post(
            f"{server.url}/api/v1/conversations/{made['id']}/messages",
            json={"body": body},
            headers=staff,
            timeout=30,
        )
        assert sent.status_code == 201
        secrets += [title, body, made["id"], made["patient_token"], made["patient_url"]]
        address = f"patient{n}@example.org"
        requests.post(
            f"{server.url}/api/v1/conversations/{made['id']}/link-mail",
            json={"email": address, "patient_token": made["patient_token"]},
            headers=staff,
            timeout=30,
        )
        secrets.append(address)
    metrics = Metrics(baselines=config.home / "metrics")

    def probed_all_three() -> bool:
        # What the supervisor's probe does with each status answer (Supervisor._on_status).
        status = facility_http.status(config, SLUG)
        metrics.status(SLUG, status)
        return status.deletions is not None and dict(status.deletions.reasons)["expiry"] == 3

    wait_until(probed_all_three, 60)

    body = metrics.exposition().decode()
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    assert found[("medcell_deletion_lag_seconds_bucket", (("le", "60.0"),))] == 3
    assert found[("medcell_deletion_lag_seconds_count", ())] == 3
    assert found[("medcell_deletions_total", (("reason", "expiry"),))] == 3
    assert found[("medcell_storage_used_bytes", (("facility", SLUG),))] > 0
    for secret in secrets:
        assert secret not in body
        assert secret.lower() not in body.lower()
    assert "Geheim" not in body and "example.org" not in body and "@" not in body

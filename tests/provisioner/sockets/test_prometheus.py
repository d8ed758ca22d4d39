"""A real Prometheus (Debian's package: `make prometheus`) scrapes the supervisor's /metrics, loads
deploy/prometheus/medcell-rules.yml and answers queries over its HTTP API: a wake and a deletion
appear in their histograms, and the "deletion late" alert fires once a facility misses a deadline.
The supervisor runs its own loop over the fake engine and fake facilities on real sockets."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.provisioner.sockets.fakes import wait_until
from tests.provisioner.sockets.test_metrics import start, totals  # noqa: F401 (a fixture)
from tests.provisioner.sockets.test_supervisor import post

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

RULES = REPO / "deploy" / "prometheus" / "medcell-rules.yml"
DASHBOARD = REPO / "deploy" / "prometheus" / "grafana-dashboard.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    """Start one scraping `target` every second and evaluating the rules every second."""
    made = []

    def run(target: tuple[str, int]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "medcell",
                            "static_configs": [{"targets": [f"{target[0]}:{target[1]}"]}],
                        }
                    ],
                }
            )
        )
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("w"),
        )
        made.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), 60)
        return url

    yield run
    for process in made:
        process.terminate()
        process.wait(30)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10
    ) as response:
        answer = json.load(response)
    assert answer["status"] == "success"
    return answer["data"]["result"]


def scalar(url: str, expr: str) -> float | None:
    result = query(url, expr)
    return float(result[0]["value"][1]) if result else None


def test_the_example_rules_load():
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_example_scrape_config_loads():
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(RULES.parent / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_sees_a_wake_a_deletion_on_time_and_alerts_on_a_late_one(
    config,
    engine,
    clock,
    start,  # noqa: F811 (the fixture imported above)
    prometheus,
):
    engine.add_facility("praxis", running=False, asleep=True)
    desk = engine.add_facility("desk")
    desk.deletions = totals([0])
    supervisor, server = start()
    url = prometheus(server.server_address[:2])

    def seen(expr: str, expected: float):
        def check() -> bool:
            clock.advance(5)  # the scheduler's probes of the awake facilities come round
            return scalar(url, expr) == expected

        return check

    # The desk was probed once with nothing deleted: what it deletes from now on counts.
    wait_until(lambda: clock.advance(5) or (config.home / "metrics" / "desk.json").exists(), 60)
    desk.deletions = totals([0, 0, 1], sum_ms=10_000)  # one conversation deleted 10 s late
    assert post(config, "/wake/praxis")[0] == 200

    wait_until(seen("medcell_wake_seconds_count", 1), 60)
    wait_until(seen('medcell_wake_seconds_bucket{le="+Inf"}', 1), 60)
    wait_until(seen('medcell_wakes_total{cause="request"}', 1), 60)
    wait_until(seen('medcell_deletion_lag_seconds_bucket{le="60.0"}', 1), 60)
    assert scalar(url, 'medcell_deletion_lag_seconds_bucket{le="15.0"}') == 1
    assert scalar(url, 'medcell_facilities{state="running"}') == 2
    assert query(url, 'ALERTS{alertname="MedcellDeletionLate"}') == []

    # The desk misses a deadline: its next expired conversation goes 700 s after expiry.
    desk.deletions = totals([0, 0, 1, 0, 0, 0, 0, 1], sum_ms=710_000)

    wait_until(seen('ALERTS{alertname="MedcellDeletionLate",alertstate="firing"}', 1), 60)
    assert scalar(url, 'medcell_deletions_late_total{facility="desk"}') == 1
    assert scalar(url, 'medcell_deletion_lag_seconds_bucket{le="60.0"}') == 1

    # Every panel of the example dashboard is a query Prometheus accepts.
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query(url, target["expr"])

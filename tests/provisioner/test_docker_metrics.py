"""Metrics of a real installation, as an operator scrapes them: `medcell up` publishes the
supervisor's /metrics on the host at MEDCELL_METRICS_BIND and nowhere else, and a real Prometheus
(Debian's package: `make prometheus`) scraping it there sees what a workload on a real facility did:
its expired conversation deleted within 60 s, its wake, its states, the requests made."""

from __future__ import annotations

import socket
import urllib.request

import docker
import pytest

import devsupport
from devsupport import eventually, free_port
from tests.provisioner.sockets.test_prometheus import prometheus, query, scalar  # noqa: F401

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    installation = devsupport.Installation(tmp_path_factory.mktemp("metrics") / "home")
    try:
        installation.medcell("up")
        yield installation
    finally:
        installation.remove()


def scrape(address: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def answers(address: str, port: int) -> bool:
    try:
        return "medcell_facilities" in scrape(address, port)
    except OSError:
        return False


def host_address() -> str:
    """An address of this host that is not loopback: its end of Docker's default bridge."""
    bridge = docker.from_env().networks.get("bridge")
    return bridge.attrs["IPAM"]["Config"][0]["Gateway"]


def published(stack) -> dict:
    supervisor = docker.from_env().containers.get(stack.supervisor)
    return supervisor.attrs["NetworkSettings"]["Ports"]


def test_metrics_are_published_only_at_the_configured_address(stack):
    port = stack.metrics_port
    assert published(stack) == {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert eventually(lambda: answers("127.0.0.1", port), bool, 60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host_address(), port), timeout=5).close()
    # Nobody but the supervisor is on its network, and that network has no route out.
    network = docker.from_env().networks.get(f"{stack.prefix}-metrics")
    assert list(network.attrs["Containers"]) == [
        docker.from_env().containers.get(stack.supervisor).id
    ]
    assert network.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"

    # Another bind: the supervisor is recreated there and the old port is closed.
    moved = free_port()
    stack.env["MEDCELL_METRICS_BIND"] = f"127.0.0.1:{moved}"
    try:
        out = stack.medcell("up")
        assert f"recreated {stack.supervisor} for new settings or image" in out["repaired"]
        assert list(published(stack)) == [f"{moved}/tcp"]
        assert eventually(lambda: answers("127.0.0.1", moved), bool, 60)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stack.env["MEDCELL_METRICS_BIND"] = f"127.0.0.1:{port}"
        stack.medcell("up")
    assert eventually(lambda: answers("127.0.0.1", port), bool, 60)


def test_a_taken_metrics_port_is_a_clear_error(stack, tmp_path):
    other = devsupport.Installation(tmp_path / "home")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        other.env["MEDCELL_METRICS_BIND"] = f"127.0.0.1:{taken}"
        try:
            with pytest.raises(RuntimeError, match=rf"port 127.0.0.1:{taken} is taken; set "):
                other.medcell("up")
            # Nothing half-started is left to block the next `up`.
            assert not docker.from_env().containers.list(
                all=True, filters={"name": other.supervisor}
            )
        finally:
            other.remove()


def test_prometheus_sees_the_workload_through_the_published_port(stack, prometheus):  # noqa: F811
    url = prometheus(("127.0.0.1", stack.metrics_port))
    # Its conversations expire 10 s after their last activity; idle 3 s later it sleeps.
    stack.create("watch", "--idle", "3s", "--retention", "10s")
    stack.create("closed")
    stack.medcell("facility", "stop", "closed")
    session = stack.session()
    api = stack.api("watch")
    requests_made = {"200": 0, "201": 0}

    staff = stack.login("watch", session)  # through the gateway: 200
    requests_made["200"] += 1
    created = session.post(f"{api}/conversations", json={"title": "Befund"}, headers=staff)
    assert created.status_code == 201, created.text
    requests_made["201"] += 1
    # Its deadline keeps it awake until the conversation is deleted; then it falls asleep.
    status = eventually(
        lambda: stack.medcell("facility", "show", "watch")["status"], "asleep".__eq__, 90
    )
    assert status == "asleep"

    # The first request after that wakes it, and is answered.
    listed = session.get(f"{api}/conversations", headers=staff, timeout=60)
    assert listed.status_code == 200 and listed.json()["conversations"] == []
    requests_made["200"] += 1
    for _ in range(3):
        assert session.get(f"{api}/conversations", headers=staff).status_code == 200
        requests_made["200"] += 1

    def seen(expr: str, expected: float) -> None:
        assert (
            eventually(lambda: scalar(url, expr), lambda value: value == expected, 60) == expected
        ), expr

    seen('medcell_deletions_total{reason="expiry"}', 1)
    assert scalar(url, 'medcell_deletion_lag_seconds_bucket{le="60.0"}') == 1
    assert scalar(url, "medcell_deletion_lag_seconds_count") == 1
    # The request's wake; the deadline may have woken it too, if it fell asleep before.
    seen('medcell_wakes_total{cause="request"}', 1)
    causes = {r["metric"]["cause"]: float(r["value"][1]) for r in query(url, "medcell_wakes_total")}
    assert scalar(url, "medcell_wake_seconds_count") == sum(causes.values())
    seen('medcell_facilities{state="running"}', 1)
    assert scalar(url, 'medcell_facilities{state="stopped"}') == 1
    assert scalar(url, 'medcell_facilities{state="asleep"}') == 0
    for status, n in requests_made.items():
        expr = f'medcell_gateway_requests_total{{category="api",status="{status}"}}'
        seen(expr, n)
    assert scalar(url, 'sum(medcell_gateway_requests_total{category="api"})') == sum(
        requests_made.values()
    )

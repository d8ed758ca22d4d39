"""Access logs: JSON lines of what happened; never a path, query, token, cookie or client IP."""

import io
import json
import logging

import requests

from gateway import accesslog, routes

from .rawhttp import raw_request

SECRET = "S3CRET"


def full_patient_flow(gateway) -> None:
    token = f"tok-{SECRET}-patient"
    auth = {"Authorization": f"Bearer {SECRET}-bearer", "Cookie": f"session={SECRET}-cookie"}
    requests.get(f"{gateway.url}/f/a/p/{token}?pin={SECRET}-pin", headers=auth)
    requests.post(
        f"{gateway.url}/f/a/api/v1/conversations/{SECRET}-id/messages",
        json={"body": f"{SECRET} my rash"},
        headers=auth,
    )
    requests.post(f"{gateway.url}/f/a/api/v1/login", json={"password": f"{SECRET}-pw"})
    requests.get(f"{gateway.url}/f/nowhere/p/{token}")  # unknown facility
    requests.get(f"{gateway.url}/f/dead/p/{token}")  # upstream refuses: its error quotes the URL
    requests.get(f"{gateway.url}/f/a/slow?token={SECRET}")  # timeout
    raw_request(gateway.port, f"/f/a/p/{SECRET}%2f..", headers={"X-Token": SECRET})  # refused
    raw_request(gateway.port, f"/{SECRET}", method=f"X{SECRET}")  # odd method


def test_logs_never_carry_secrets(gateway, gateway_log, upstreams):
    full_patient_flow(gateway)
    assert len(gateway_log.records(at_least=8, event="request")) >= 8
    # nginx's own error lines (unreachable facility, timeout, refused request) came through too,
    # reduced to their kind.
    events = {r["event"] for r in gateway_log.records()}
    assert {"upstream_unreachable", "upstream_timeout"} <= events
    for line in gateway_log.lines:
        json.loads(line)  # one format for the whole log
        assert SECRET not in line
        assert "127.0.0.1" not in line
        assert "/f/" not in line


def test_each_request_is_one_json_line_with_its_facts(gateway, gateway_log, upstreams):
    requests.post(f"{gateway.url}/f/a/api/v1/login", data=b"x" * 1000)
    requests.get(f"{gateway.url}/f/b/p/some-token")
    requests.get(f"{gateway.url}/f/resting/")
    records = gateway_log.records(at_least=3, event="request")
    api, link, stopped = records
    assert api["method"] == "POST" and api["facility"] == "a" and api["route"] == "api"
    # bytes_in is what the client sent, request line and headers included (nginx's count).
    assert api["status"] == 200 and api["bytes_in"] > 1000 and api["bytes_out"] > 0
    assert isinstance(api["duration_ms"], int)
    assert link["facility"] == "b" and link["route"] == "patient-link"
    assert stopped["facility"] == "resting" and stopped["status"] == 503
    assert set(api) == {
        "ts", "level", "event", "method", "facility", "route", "status",
        "duration_ms", "bytes_in", "bytes_out",
    }  # fmt: skip


def test_unknown_facility_names_are_not_logged(gateway, gateway_log):
    requests.get(f"{gateway.url}/f/{SECRET.lower()}/")
    (record,) = gateway_log.records(event="request")
    assert record["facility"] is None and record["status"] == 404


def test_health_probe_is_not_logged(gateway, gateway_log):
    requests.get(f"{gateway.url}/healthz")
    requests.get(f"{gateway.url}/f/a/")
    assert [r["route"] for r in gateway_log.records(event="request")] == ["page"]


def test_route_reload_events_are_encoded_once(tmp_path):
    # A dict message goes to the formatter as fields, never pre-encoded into "event".
    stream = io.StringIO()
    logger = logging.getLogger(accesslog.LOGGER)
    saved = logger.handlers[:]
    logger.handlers = []
    try:
        accesslog.configure()
        logger.handlers[0].setStream(stream)
        path = tmp_path / "routes.json"
        path.write_text(json.dumps({"version": 2, "generation": 1, "facilities": {"A\n": {}}}))
        routes.RoutesFile(str(path)).poll()
        path.write_text("{")
        routes.RoutesFile(str(path)).poll()
    finally:
        logger.handlers = saved
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["routes_unusable", "routes_unusable"]
    assert lines[0]["reason"] == "routes.json has a malformed entry"
    assert lines[1]["reason"] == "routes.json is not valid JSON"

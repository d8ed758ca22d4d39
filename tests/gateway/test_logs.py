"""Access logs: JSON lines of what happened; never a path, query, token, cookie or client IP."""

import io
import json
import logging

from devsupport import localhost
from gateway import eventlog, routes

from .rawhttp import raw_request

SECRET = "S3CRET"


def full_patient_flow(gateway) -> None:
    token = f"tok-{SECRET}-patient"
    auth = {"Authorization": f"Bearer {SECRET}-bearer", "Cookie": f"session={SECRET}-cookie"}
    localhost.get(f"{gateway.origin('a')}/p/{token}?pin={SECRET}-pin", headers=auth)
    localhost.post(
        f"{gateway.origin('a')}/api/v1/conversations/{SECRET}-id/messages",
        json={"body": f"{SECRET} my rash"},
        headers=auth,
    )
    localhost.post(f"{gateway.origin('a')}/api/v1/login", json={"password": f"{SECRET}-pw"})
    localhost.get(f"{gateway.origin('nowhere')}/p/{token}")  # unknown facility
    # The upstream refuses: its error quotes the URL.
    localhost.get(f"{gateway.origin('dead')}/p/{token}")
    localhost.get(f"{gateway.origin('a')}/slow?token={SECRET}")  # timeout
    raw_request(gateway.port, f"/p/{SECRET}%2f..", headers={"X-Token": SECRET}, host="a.localhost")
    raw_request(gateway.port, f"/p/{SECRET}", host=f"{SECRET.lower()}.evil.example")  # 421
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
    localhost.post(f"{gateway.origin('a')}/api/v1/login", data=b"x" * 1000)
    localhost.get(f"{gateway.origin('b')}/p/some-token")
    localhost.get(f"{gateway.origin('resting')}/")
    records = gateway_log.records(at_least=3, event="request")
    # A line of an earlier test's request may still come in: only these three facilities' count.
    api, link, stopped = [r for r in records if r["facility"] in ("a", "b", "resting")][-3:]
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
    localhost.get(f"{gateway.origin(SECRET.lower())}/")
    (record,) = gateway_log.records(event="request")
    assert record["facility"] is None and record["status"] == 404


def test_health_probe_is_not_logged(gateway, gateway_log):
    localhost.get(f"{gateway.url}/healthz")
    localhost.get(f"{gateway.origin('a')}/")
    assert [r["route"] for r in gateway_log.records(event="request")] == ["page"]


def test_route_reload_events_are_encoded_once(tmp_path):
    # A dict message goes to the formatter as fields, never pre-encoded into "event".
    stream = io.StringIO()
    logger = logging.getLogger(eventlog.LOGGER)
    saved = logger.handlers[:]
    logger.handlers = []
    try:
        eventlog.configure()
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

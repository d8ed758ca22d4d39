"""An outside fuzzer against a real facility: the OpenAPI document is true, the app never breaks.

Schemathesis (its CLI, every check, every phase) reads the live document from a facility's
server on loopback and tests whatever operations it lists, so endpoints added later are fuzzed
too. Once with an admin's token, once with a patient's; the run must end with no failure and no
server error. Examples per operation are bounded so the whole file takes a minute or two.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests

from devsupport import FacilityServer, localhost

pytestmark = pytest.mark.process  # starts processes or servers: see pyproject.toml

ROOT = Path(__file__).resolve().parents[2]
SLUG = "fuzzed"
MAX_EXAMPLES = 20


@pytest.fixture
def facility(tmp_path):
    """A facility's server as its image starts it, and its admin's login."""
    server = FacilityServer(tmp_path, SLUG)
    server.create_admin()
    server.start()
    yield server
    server.stop()


def login(server: FacilityServer) -> str:
    response = requests.post(server.url + "/api/v1/login", json=server.admin, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def toml(config: dict) -> str:
    """A small TOML writer for the fuzzer's configuration: tables of strings and numbers."""
    lines: list[str] = []

    def inline(value: object) -> str:
        if isinstance(value, dict):
            return (
                "{ " + ", ".join(f"{json.dumps(k)} = {inline(v)}" for k, v in value.items()) + " }"
            )
        return json.dumps(value)

    def table(name: str, values: dict) -> None:
        lines.append(name)
        lines.extend(f"{key} = {inline(value)}" for key, value in values.items())

    table("", {k: v for k, v in config.items() if not isinstance(v, dict | list)})
    for key, value in config.items():
        if isinstance(value, dict):
            table(f"[{key}]", value)
        elif isinstance(value, list):
            for item in value:
                table(f"[[{key}]]", item)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Gateway:
    """Where the facility is reached through a gateway: its HTTPS address on loopback, the Host
    that names the facility's own origin there, and the gateway's certificate."""

    address: str  # https://127.0.0.1:<port>
    host: str  # <slug>.localhost:<port>
    cert: str


def fuzz(
    server: FacilityServer,
    tmp_path: Path,
    token: str,
    operations: list[dict],
    dictionaries: dict[str, list[str]] | None = None,
    gateway: Gateway | None = None,
) -> None:
    """Run the fuzzer with `token`; fail with its report unless it found nothing at all.

    With `gateway`, every request goes through it to the facility's own origin: the fuzzer
    (a separate process, resolving with glibc, which knows no *.localhost) connects to the
    gateway's address and names the origin in `Host`, which is what nginx routes by.
    """
    headers = {"Authorization": f"Bearer {token}"}
    schema, target = f"{server.url}/api/v1/openapi.json", []
    if gateway is not None:
        headers["Host"] = gateway.host
        document = localhost.get(
            f"https://{gateway.host}/api/v1/openapi.json", verify=gateway.cert, timeout=10
        ).json()
        schema = str(tmp_path / "openapi.json")
        (tmp_path / "openapi.json").write_text(json.dumps(document))
        target = ["--url", f"{gateway.address}/", "--tls-verify", gateway.cert]
    config = {
        "dictionaries": {name: {"values": values} for name, values in (dictionaries or {}).items()},
        "headers": headers,
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        # A text over its maxLength is a 400 like any other value outside the document.
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        "operations": operations,
    }
    (tmp_path / "schemathesis.toml").write_text(toml(config))
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(tmp_path / "schemathesis.toml"),
            "run",
            schema,
            *target,
            "--checks",
            "all",
            # One worker: Python 3.11's ast module is not thread-safe, and the fuzzer's
            # generator parses source in each worker thread ("AST constructor recursion depth
            # mismatch" now and then with two).
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / "junit.xml"),
        ],
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("fuzz_hooks.py"))},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0"), report
    tested = {case.get("name") for case in suite.iter("testcase")}
    if gateway is None:
        document = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10).json()
    operations = {f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops}
    # Every operation of the document, whoever added it, and the link-following scenarios.
    assert tested == operations | {"Stateful tests"}, report


REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"]
ACCEPTED_FILES = ["2XX", "401", "403", "404", "413", "415"]
CORE_RULES = ["2XX", "400", "401", "403"]
# Rules no schema can state: a link-mail text's (exactly one {link}, no web address, printable
# lines: the relay's own) and the request topics' (one at least while on, each once). Their 400
# names the rule, and the old value stays.
RULES_BEYOND_THE_SCHEMA = [
    {
        "include-name": name,
        "checks": {"positive_data_acceptance": {"expected-statuses": CORE_RULES}},
    }
    for name in ("PUT /api/v1/link-mail-template", "PUT /api/v1/intake")
]


def test_the_fuzzer_finds_nothing_as_an_admin(facility, tmp_path):
    fuzz(
        facility,
        tmp_path,
        login(facility),
        [
            # Logging out ends the token the fuzzer uses: that operation gets one of its own.
            {
                "include-path": "/api/v1/logout",
                "headers": {"Authorization": f"Bearer {login(facility)}"},
            },
            *RULES_BEYOND_THE_SCHEMA,
        ],
    )


def test_the_fuzzer_finds_nothing_as_a_patient(facility, tmp_path):
    staff = {"Authorization": f"Bearer {login(facility)}"}

    def conversation() -> dict:
        url = facility.url + "/api/v1/conversations"
        made = requests.post(url, json={"title": "Knie"}, headers=staff, timeout=10).json()
        requests.post(
            f"{url}/{made['id']}/messages", json={"body": "Hallo"}, headers=staff, timeout=10
        )
        return made

    mine, spare = conversation(), conversation()
    with_pin = requests.post(
        facility.url + "/api/v1/conversations", json={"pin": "2468"}, headers=staff, timeout=10
    ).json()
    own = {"conv_id": mine["id"]}
    fuzz(
        facility,
        tmp_path,
        mine["patient_token"],
        [
            # A file's type is in its bytes, which no schema can state: drawn bytes are mostly
            # no photo or PDF, and their documented 415 is the right answer.
            {
                "include-name": "POST /api/v1/conversations/{conv_id}/attachments",
                "parameters": own,
                "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FILES}},
            },
            # What a patient does with their own conversation, beyond "not found".
            *(
                {"include-name": name, "parameters": own}
                for name in (
                    "GET /api/v1/conversations/{conv_id}",
                    "GET /api/v1/conversations/{conv_id}/messages",
                    "POST /api/v1/conversations/{conv_id}/messages",
                    "GET /api/v1/conversations/{conv_id}/access-log",
                    "GET /api/v1/conversations/{conv_id}/notifications",
                    "PUT /api/v1/conversations/{conv_id}/notifications",
                )
            ),
            # Deleting it would end the token of the whole run: deletion gets a conversation of
            # its own, and that patient's token.
            {
                "include-name": "DELETE /api/v1/conversations/{conv_id}",
                "parameters": {"conv_id": spare["id"]},
                "headers": {"Authorization": f"Bearer {spare['patient_token']}"},
            },
            # Real links (one with a PIN) and that PIN now and then, beside drawn values.
            {
                "include-name": "POST /api/v1/patient-sessions",
                "parameters": {
                    "body.token": {"dictionary": "links", "probability": 0.5},
                    "body.pin": {"dictionary": "pins", "probability": 0.5},
                },
            },
        ],
        {"links": [mine["patient_token"], with_pin["patient_token"]], "pins": ["2468"]},
    )
    # The patient's own conversation lived through the whole run (so its token did), with what
    # the fuzzer wrote; the spare one was deleted by its patient.
    base = facility.url + "/api/v1/conversations/"
    listed = requests.get(base + mine["id"] + "/messages", headers=staff, timeout=10)
    assert listed.status_code == 200 and len(listed.json()["messages"]) > 1
    assert requests.get(base + spare["id"], headers=staff, timeout=10).status_code == 404

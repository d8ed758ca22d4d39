"""The document's patterns mean exactly the rules core enforces, and requests are held to them."""

import io
import re

import pytest

from medcell_common.rules import UNIT_SECONDS, parse_retention
from services.facility.api import patterns
from services.facility.api.validation import FORMATS, KNOWN


def ecma(pattern: str) -> re.Pattern:
    """A JSON Schema pattern as ECMA-262 reads it: `$` only at the very end."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def test_retention_pattern_accepts_exactly_what_parse_retention_accepts():
    pattern = ecma(patterns.retention()["pattern"])
    for unit, seconds in UNIT_SECONDS.items():
        for n in range(0, 7 * 86400 // seconds + 50):
            for text in (f"{n}{unit}", f"0{n}{unit}"):
                try:
                    parse_retention(text)
                    accepted = True
                except ValueError:
                    accepted = False
                assert bool(pattern.search(text)) == accepted, text
    assert not pattern.search("7d\n") and not pattern.search("1w")


@pytest.mark.parametrize("n", [1, 7, 9, 10, 99, 100, 168, 10080, 604800, 1000])
def test_up_to_matches_one_to_n_only(n):
    pattern = re.compile(patterns.up_to(n) + r"\Z")
    assert [i for i in range(0, n * 3) if pattern.match(str(i))] == list(range(1, n + 1))


def test_white_space_of_the_patterns_is_what_strip_removes():
    assert patterns.space_chars() == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_nonblank_text_pattern_refuses_blank_and_nul_and_accepts_the_rest():
    pattern = ecma(patterns.nonblank_text(100)["pattern"])
    for text in ("Hallo", " x ", "Grüße\n", "\u3000a", "ß"):
        assert pattern.search(text), text
    for text in ("", " ", "\t\n", "\u3000\u2028", "a\x00b", "\x00"):
        assert not pattern.search(text), repr(text)


def test_every_request_schema_uses_only_what_the_app_checks(client):
    """A keyword the validator does not know would be promised but not enforced."""
    doc = client.get("/api/v1/openapi.json").json

    def walk(schema: dict) -> None:
        assert set(schema) <= KNOWN, set(schema) - KNOWN
        assert schema.get("format", "binary") in FORMATS, schema["format"]
        for sub in [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]:
            walk(sub)

    for ops in doc["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                walk(param["schema"])
            for media in op.get("requestBody", {}).get("content", {}).values():
                walk(media["schema"])


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"body": "hi", "extra": 1}, 400, "unknown fields: extra"),
        ({"body": None}, 400, "'body' must be a string"),
        ({"body": "   "}, 400, "not only white space"),
        ({"body": "a\x00b"}, 400, "without NUL"),
        ({"body": "x" * 10_001}, 400, "at most 10000 characters"),
        ({}, 400, "needs the field 'body'"),
    ],
)
def test_a_message_outside_the_document_is_refused_and_stores_nothing(
    client, staff_auth, conversation, body, status, words
):
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    response = client.post(url, json=body, headers=staff_auth)
    assert response.status_code == status and words in response.json["error"]["message"]
    assert client.get(url, headers=staff_auth).json["messages"] == []


def test_a_pin_followed_by_a_newline_is_refused(client, staff_auth):
    response = client.post("/api/v1/conversations", json={"pin": "1234\n"}, headers=staff_auth)
    assert response.status_code == 400 and "4 to 8 digits" in response.json["error"]["message"]
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []


def test_query_parameters_are_held_to_the_document(client, admin_auth, conversation):
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    assert client.get(url + "?after=nope", headers=admin_auth).status_code == 400
    twice = f"?after={'A' * 22}&after={'B' * 22}"
    assert client.get(url + twice, headers=admin_auth).status_code == 400
    assert client.get(url + "?after=" + "A" * 22, headers=admin_auth).status_code == 200
    wrong = client.delete("/api/v1/conversations?confirm=beta", headers=admin_auth)
    assert wrong.status_code == 400
    assert client.get(url, headers=admin_auth).status_code == 200
    right = client.delete("/api/v1/conversations?confirm=alpha", headers=admin_auth)
    assert right.status_code == 200 and right.json["deleted"] == 1


def test_a_405_names_the_methods_the_path_allows(client, staff_auth):
    response = client.patch("/api/v1/conversations", headers=staff_auth)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST", "DELETE"}
    assert response.json["error"]["code"] == "method_not_allowed"
    page = client.put("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]


@pytest.mark.parametrize(
    "data, status, words",
    [
        ({"file": (io.BytesIO(b"x"), "a.txt"), "note": "hi"}, 400, "unknown fields: note"),
        ({"file": (io.BytesIO(b"x"), "a.txt"), "body": "x" * 10_001}, 400, "at most 10000"),
        ({"file": (io.BytesIO(b"x"), "a.txt"), "body": "a\x00"}, 400, "without NUL"),
        ({"file": "not a file part"}, 400, "needs a file part 'file'"),
        ({"body": "only text"}, 400, "needs a file part 'file'"),
    ],
)
def test_an_upload_outside_the_document_is_refused_and_stores_nothing(
    client, staff_auth, conversation, data, status, words
):
    base = f"/api/v1/conversations/{conversation['id']}"
    response = client.post(
        base + "/attachments", data=data, headers=staff_auth, content_type="multipart/form-data"
    )
    assert response.status_code == status and words in response.json["error"]["message"]
    assert client.get(base + "/messages", headers=staff_auth).json["messages"] == []


@pytest.mark.parametrize(
    "reference, status, words",
    [
        ({"birth_date": "2023-02-29"}, 400, "birth_date"),
        ({"birth_date": "1984-3-7"}, 400, "birth_date"),
        ({"birth_date": "1984-03-07\n"}, 400, "birth_date"),
        ({"birth_date": 19840307}, 400, "birth_date"),
        ({"name": {}}, 400, "'name' must be a string"),
        ({"name": "a\nb"}, 400, "'name'"),
        ({"number": "1", "ward": "3"}, 400, "unknown fields: ward"),
    ],
)
def test_a_reference_outside_the_document_is_refused_and_keeps_the_old_one(
    client, staff_auth, conversation, reference, status, words
):
    url = f"/api/v1/conversations/{conversation['id']}/reference"
    assert client.put(url, json={"number": "42"}, headers=staff_auth).status_code == 200
    response = client.put(url, json=reference, headers=staff_auth)
    assert response.status_code == status and words in response.json["error"]["message"]
    assert client.get(url, headers=staff_auth).json["reference"] == {"number": "42"}


def test_a_reference_takes_null_and_empty_fields_and_a_real_date(client, staff_auth, conversation):
    url = f"/api/v1/conversations/{conversation['id']}/reference"
    sent = {"name": None, "birth_date": "2024-02-29", "number": ""}
    response = client.put(url, json=sent, headers=staff_auth)
    assert response.status_code == 200 and response.json["reference"] == {
        "birth_date": "2024-02-29"
    }
    cleared = client.put(url, json={"birth_date": ""}, headers=staff_auth)
    assert cleared.status_code == 200 and cleared.json["reference"] is None


@pytest.mark.parametrize("title", [{}, [], 1, True])
def test_a_title_that_is_not_text_is_refused(client, staff_auth, title):
    response = client.post("/api/v1/conversations", json={"title": title}, headers=staff_auth)
    assert (
        response.status_code == 400
        and "'title' must be a string" in response.json["error"]["message"]
    )
    assert client.get("/api/v1/conversations", headers=staff_auth).json["conversations"] == []


@pytest.mark.parametrize(
    "url, body, words",
    [
        ("/api/v1/quick-replies", {"label": "   ", "body": "Hallo"}, "not only white space"),
        ("/api/v1/quick-replies", {"label": "Gruß", "body": "x", "id": 3}, "unknown fields: id"),
        ("/api/v1/contact", {"hours": "Mo\x00"}, "without NUL"),
        ("/api/v1/contact", {"phone": None}, "'phone' must be a string"),
        ("/api/v1/notifications", {}, "needs the field 'email'"),
        ("/api/v1/notifications", {"email": "a@b.de", "x": 1}, "unknown fields: x"),
    ],
)
def test_admin_settings_outside_the_document_are_refused(client, admin_auth, url, body, words):
    before = client.get(url, headers=admin_auth).json
    method = client.post if url.endswith("quick-replies") else client.put
    response = method(url, json=body, headers=admin_auth)
    assert response.status_code == 400 and words in response.json["error"]["message"]
    assert client.get(url, headers=admin_auth).json == before


@pytest.mark.parametrize("query", ["?limit=abc", "?limit=0", "?limit=1001", "?limit=1&limit=2"])
def test_the_receipt_list_limit_is_held_to_the_document(client, staff_auth, query):
    assert client.get("/api/v1/receipts" + query, headers=staff_auth).status_code == 400


def test_a_receipt_download_takes_no_value(client, admin_auth, conversation):
    receipt = client.delete(f"/api/v1/conversations/{conversation['id']}", headers=admin_auth)
    url = f"/api/v1/receipts/{receipt.json['receipt']['receipt_id']}"
    assert "attachment" in client.get(url + "?download").headers["Content-Disposition"]
    assert client.get(url + "?download=yes").status_code == 400

"""The OpenAPI document describes exactly the API the app serves."""

import re

import pytest


def test_openapi_document_matches_the_routes(app, client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule == "/healthz":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served


def test_every_documented_error_uses_the_error_schema(client):
    doc = client.get("/api/v1/openapi.json").json
    for ops in doc["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_test_client_fails_a_response_the_document_does_not_describe(client):
    from openapi_core import OpenAPI
    from openapi_core.validation.response.exceptions import DataValidationError

    doc = client.get("/api/v1/openapi.json").json
    doc["servers"] = [{"url": "http://localhost"}]
    health = doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]
    health["schema"] = {"type": "object", "required": ["version"]}
    client.openapi = OpenAPI.from_dict(doc)
    with pytest.raises(DataValidationError):
        client.get("/healthz")


def test_every_path_parameter_has_a_pattern_and_the_gateways_400_is_documented(client):
    # The gateway answers 400 for a target with control characters or bad encodings before
    # the facility sees it: an operation that takes a path parameter must say so.
    doc = client.get("/api/v1/openapi.json").json
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = [p for p in op.get("parameters", []) if p["in"] == "path"]
            for param in params:
                assert "pattern" in param["schema"], (method, path, param["name"])
            if params:
                assert "from the gateway" in op["responses"]["400"]["description"], (method, path)


def test_a_text_over_its_max_length_is_a_400_and_413_is_only_for_bodies(client, staff_auth):
    doc = client.get("/api/v1/openapi.json").json
    for ops in doc["paths"].values():
        for op in ops.values():
            if "requestBody" in op:
                assert "400" in op["responses"]
    too_long = client.post("/api/v1/conversations", json={"title": "t" * 201}, headers=staff_auth)
    assert too_long.status_code == 400 and "at most 200" in too_long.json["error"]["message"]
    over_limit = client.post(
        "/api/v1/conversations", data=b"{" + b" " * 300_000 + b"}", headers=staff_auth
    )
    assert over_limit.status_code == 413


def test_each_api_module_documents_exactly_the_routes_of_its_own_blueprint(app):
    from services.facility.api import openapi

    config = app.extensions["medcell"].config
    for module in (*openapi.MODULES, openapi):
        paths = module.openapi_paths(config)
        documented = {(path, method.upper()) for path, ops in paths.items() for method in ops}
        served = set()
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith(f"{module.bp.name}."):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
                served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
        assert documented == served, module.__name__

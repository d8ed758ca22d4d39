"""The gateway streams exactly the facility's upload routes; it reads every other body whole."""

import re

from gateway.nginx import UPLOAD_PATHS
from services.facility.http.bodies import UPLOAD_ENDPOINTS


def test_every_upload_route_is_streamed_by_the_gateway(app):
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint in UPLOAD_ENDPOINTS]
    assert {rule.endpoint for rule in rules} == UPLOAD_ENDPOINTS
    for rule in rules:
        path = re.sub(r"<[^>]+>", "c0ffee", rule.rule)
        assert re.fullmatch(UPLOAD_PATHS, path), f"{rule.rule} would be read whole by the gateway"


def test_other_post_routes_are_read_whole(app):
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint not in UPLOAD_ENDPOINTS:
            path = re.sub(r"<[^>]+>", "c0ffee", rule.rule)
            assert not re.fullmatch(UPLOAD_PATHS, path), rule.rule

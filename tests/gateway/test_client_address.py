"""Whose address the gateway counts and passes on: the connection's, or a trusted proxy's word."""

from .rawhttp import client_at


def forwarded_for(gateway, source: str, claimed: str) -> str:
    headers = {"X-Forwarded-For": claimed}
    response = client_at(source).get(f"{gateway.origin('a')}/", headers=headers)
    return response.json()["headers"]["x-forwarded-for"]


def test_only_a_trusted_load_balancer_names_the_client(make_gateway, upstreams):
    gateway = make_gateway(MEDCELL_GATEWAY_TRUSTED_PROXIES="127.0.0.2, 127.0.1.0/24")
    assert forwarded_for(gateway, "127.0.0.2", "203.0.113.9") == "203.0.113.9"
    assert forwarded_for(gateway, "127.0.1.7", "198.51.100.1, 203.0.113.9") == "203.0.113.9"
    assert forwarded_for(gateway, "127.0.0.3", "203.0.113.9") == "127.0.0.3"

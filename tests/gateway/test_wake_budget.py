"""The per-client wake budget: one client cannot wake a whole host, others still wake theirs."""

import pytest
import requests

from devsupport import localhost


class _FromAddress(localhost.LocalhostAdapter):
    """Reaches `*.localhost` from one loopback address, so the gateway sees a client of its own."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(address: str) -> requests.Session:
    """A session from `address` to the facilities' own origins (the environment's CA bundle)."""
    session = localhost.session()
    session.mount("https://", _FromAddress(address))
    return session


@pytest.fixture
def budget_gateway(gateway, make_gateway):
    """A gateway where a, b and sleepy sleep and one client may wake one facility per hour."""
    for slug in ("a", "b"):
        gateway.supervisor.answer(slug, 200)
    return make_gateway(
        {"a": "asleep", "b": "asleep", "sleepy": "asleep"},
        MEDCELL_WAKE_BUDGET="1",
        MEDCELL_WAKE_BUDGET_WINDOW="1h",
    )


def test_a_client_over_its_wake_budget_gets_429_and_the_facility_stays_asleep(
    gateway, budget_gateway
):
    greedy = client("127.0.0.1")
    assert greedy.get(f"{budget_gateway.origin('a')}/").status_code == 200
    # The facility it woke already: no further cost.
    assert greedy.get(f"{budget_gateway.origin('a')}/x").status_code == 200

    refused = greedy.get(f"{budget_gateway.origin('b')}/")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 3000 <= int(refused.headers["Retry-After"]) <= 3600
    assert ("POST", "/wake/b") not in gateway.supervisor.seen
    assert gateway.upstreams["b"].seen == []


def test_another_client_still_wakes_facilities_while_one_is_over_budget(gateway, budget_gateway):
    greedy, other = client("127.0.0.1"), client("127.0.0.2")
    assert greedy.get(f"{budget_gateway.origin('a')}/").status_code == 200
    assert greedy.get(f"{budget_gateway.origin('sleepy')}/").status_code == 429

    answer = other.get(f"{budget_gateway.origin('sleepy')}/")

    assert answer.status_code == 200
    assert answer.json()["upstream"] == "sleepy"
    assert gateway.supervisor.seen.count(("POST", "/wake/sleepy")) == 1


def test_a_browser_over_its_budget_gets_a_page_saying_to_wait(gateway, budget_gateway):
    greedy = client("127.0.0.1")
    assert greedy.get(f"{budget_gateway.origin('a')}/").status_code == 200
    page = greedy.get(f"{budget_gateway.origin('b')}/", headers={"Accept": "text/html"})
    assert page.status_code == 429
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Retry-After" in page.headers

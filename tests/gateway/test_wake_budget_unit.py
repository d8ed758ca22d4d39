"""Who counts as one client for the wake budget, and how its window passes (a fake clock)."""

from gateway.wake_budget import WakeBudget, client_key


def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_is_the_address():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")


def test_the_budget_comes_back_as_the_window_passes():
    now = [1000.0]
    budget = WakeBudget(2, 600, clock=lambda: now[0])
    assert budget.charge("c", "a") is None
    now[0] += 100
    assert budget.charge("c", "b") is None
    assert budget.charge("c", "a") is None  # woken already: free
    assert budget.charge("c", "x") == 500  # until the wake of a leaves the window
    now[0] += 500
    assert budget.charge("c", "x") is None
    assert budget.charge("c", "y") is not None


def test_no_budget_when_the_limit_is_zero():
    budget = WakeBudget(0, 600)
    assert all(budget.charge("c", f"s{i}") is None for i in range(100))

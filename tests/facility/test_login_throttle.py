"""Fair login throttling: per account and client together, a looser cap per client, and a
back-off per account across all clients that delays guesses but never locks staff out."""

import hashlib

from .conftest import ADMIN, STAFF, login


def wrong(client, username: str, addr: str = "10.0.0.7"):
    return client.post(
        "/api/v1/login",
        json={"username": username, "password": "typo typo typo"},
        environ_base={"REMOTE_ADDR": addr},
    )


def right(client, who: tuple[str, str], addr: str = "10.0.0.7"):
    return client.post(
        "/api/v1/login",
        json={"username": who[0], "password": who[1]},
        environ_base={"REMOTE_ADDR": addr},
    )


def test_one_colleagues_typos_do_not_lock_out_the_others_behind_the_same_address(client):
    for _ in range(5):
        assert wrong(client, STAFF[0]).status_code == 401
    assert right(client, STAFF).status_code == 429
    # Same shared practice address, another account: not affected.
    assert right(client, ADMIN).status_code == 200


def test_the_locked_account_still_logs_in_from_another_client(client):
    for _ in range(5):
        wrong(client, STAFF[0])
    assert right(client, STAFF, addr="10.0.0.8").status_code == 200


def test_the_answer_says_how_long_to_wait(client, clock):
    for _ in range(5):
        wrong(client, STAFF[0])
    clock.advance(5 * 60)
    response = right(client, STAFF)
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 9 * 60 < wait <= 10 * 60
    assert "10 minutes" in response.json["error"]["message"]
    clock.advance(wait)
    assert right(client, STAFF).status_code == 200


def test_spraying_many_accounts_from_one_client_hits_the_client_cap(client):
    for i in range(30):
        assert wrong(client, f"guess{i}").status_code == 401
    response = right(client, ADMIN)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert right(client, ADMIN, addr="10.0.0.9").status_code == 200


def test_a_successful_login_does_not_count_as_a_failure(client):
    for _ in range(4):
        wrong(client, STAFF[0])
    for _ in range(3):
        assert right(client, STAFF).status_code == 200
    assert wrong(client, STAFF[0]).status_code == 401
    assert right(client, STAFF).status_code == 429


def test_the_throttle_table_holds_no_username(app, client):
    wrong(client, "dr.geheimname")
    conn = app.extensions["medcell"].store.conn()
    rows = conn.execute("SELECT key FROM throttle").fetchall()
    assert rows and all(b"geheimname" not in bytes(r[0]) for r in rows)
    assert login(client, *ADMIN)


def botnet(count: int, first: int = 1):
    """Client addresses that have nothing in common (one per /16)."""
    return [f"10.{n}.0.1" for n in range(first, first + count)]


def guess_until_delayed(client, clock, username: str, addresses: list[str]) -> list[int]:
    """Wrong guesses from each address in turn, each sent as soon as it may be; the waits seen."""
    waits = []
    for addr in addresses:
        response = wrong(client, username, addr)
        if response.status_code == 429:
            wait = int(response.headers["Retry-After"])
            waits.append(wait)
            clock.advance(wait)
            assert wrong(client, username, addr).status_code == 401
        else:
            assert response.status_code == 401
    return waits


def test_guesses_spread_over_many_addresses_slow_the_account_down(client, clock):
    waits = guess_until_delayed(client, clock, STAFF[0], botnet(30))
    assert waits, "a botnet guesses one account without any delay"
    assert waits == sorted(waits) and waits[-1] > waits[0], "the delay grows"
    assert max(waits) <= 60, "a delay, never a lock-out"
    response = right(client, STAFF, addr="10.200.0.1")
    assert response.status_code == 429
    assert "try again in" in response.json["error"]["message"]


def test_the_right_password_after_the_wait_always_works(client, clock):
    guess_until_delayed(client, clock, STAFF[0], botnet(40))
    response = right(client, STAFF, addr="10.200.0.1")
    assert response.status_code == 429
    clock.advance(int(response.headers["Retry-After"]))
    assert right(client, STAFF, addr="10.200.0.1").status_code == 200


def test_a_client_that_logged_in_before_is_not_delayed_by_guesses_from_elsewhere(client, clock):
    assert right(client, STAFF, addr="10.0.0.7").status_code == 200
    guess_until_delayed(client, clock, STAFF[0], botnet(30))
    assert right(client, STAFF, addr="10.200.0.1").status_code == 429
    assert right(client, STAFF, addr="10.0.0.7").status_code == 200


def test_other_accounts_are_not_slowed_by_guesses_at_one(client, clock):
    guess_until_delayed(client, clock, STAFF[0], botnet(30))
    assert right(client, ADMIN, addr="10.200.0.1").status_code == 200


def test_an_ipv6_client_counts_as_its_whole_64(client):
    for i in range(30):
        addr = f"2001:db8:1:2::{i + 1:x}"  # a new address for every guess, one /64
        assert wrong(client, f"guess{i}", addr=addr).status_code == 401
    assert right(client, ADMIN, addr="2001:db8:1:2:ffff::9").status_code == 429
    assert right(client, ADMIN, addr="2001:db8:1:3::1").status_code == 200


def test_the_throttle_table_cannot_be_read_back_without_the_facilitys_key(make_app):
    keys = []
    for name in ("alpha", "beta"):
        client = make_app(name).test_client()
        wrong(client, "dr.geheimname", addr="10.0.0.7")
        conn = client.application.extensions["medcell"].store.conn()
        keys.append({bytes(row[0]) for row in conn.execute("SELECT key FROM throttle")})
    guessable = {
        hashlib.sha256(f"{kind}|{subject}".encode()).digest()[:16]
        for kind in ("login", "login_client", "login_account")
        for subject in ("10.0.0.7", "dr.geheimname", "dr.geheimname|10.0.0.7")
    }
    assert keys[0] and not keys[0] & guessable, "a row's name can be recomputed from a guess"
    assert not keys[0] & keys[1], "two facilities name the same client's rows alike"

"""Fair login throttling: per account and client together, with a looser cap per client."""

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
    conn = app.extensions["medcell"]["store"].conn()
    rows = conn.execute("SELECT key FROM throttle").fetchall()
    assert rows and all(b"geheimname" not in bytes(r[0]) for r in rows)
    assert login(client, *ADMIN)

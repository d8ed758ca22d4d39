"""The API's login with a second factor, and sessions still signing in (core/signin.py)."""

import subprocess
import sys
from pathlib import Path

import pyotp

from services.facility.core import accounts as auth
from services.facility.core import signin
from services.facility.core.totp import Totp

from .conftest import STAFF

ROOT_DIR = Path(__file__).resolve().parents[2]


def totp_for(app, clock, username: str = STAFF[0]) -> pyotp.TOTP:
    """TOTP switched on for the account, as its security page does."""
    facility = app.extensions["medcell"]
    conn = facility.store.conn()
    staff_id = conn.execute("SELECT id FROM staff WHERE username = ?", (username,)).fetchone()[0]
    totp = Totp(facility.keyring)
    secret = totp.begin(conn, staff_id)
    otp = pyotp.TOTP(secret)
    totp.confirm(conn, staff_id, otp.at(clock() // 1_000_000), clock())
    clock.advance(30)
    return otp


def sessions(app) -> int:
    conn = app.extensions["medcell"].store.conn()
    return conn.execute("SELECT count(*) FROM staff_sessions").fetchone()[0]


def login(client, **extra):
    return client.post("/api/v1/login", json={"username": STAFF[0], "password": STAFF[1], **extra})


def test_an_account_with_totp_needs_its_code_to_get_a_token(app, client, clock):
    otp = totp_for(app, clock)
    missing = login(client)
    assert missing.status_code == 401
    assert missing.json["error"]["code"] == "second_factor_required"
    wrong = login(client, code="000000" if otp.now() != "000000" else "111111")
    assert wrong.status_code == 401
    for bad in ("", "x" * 100, "12345 6789"):
        assert login(client, code=bad).status_code == 401
    for bad in (7, ["123456"], None):
        refused = login(client, code=bad)
        assert refused.status_code in (400, 401)
        assert set(refused.json["error"]) == {"code", "message"}
    assert sessions(app) == 0, "a refused login leaves no half-open session"
    code = otp.at(clock() // 1_000_000)
    token = login(client, code=code).json["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["username"] == STAFF[0]
    assert login(client, code=code).status_code == 401, "a used code is refused"


def test_wrong_codes_are_throttled_per_account_and_client(app, client, clock):
    totp_for(app, clock)
    statuses = [login(client, code="99999x").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_a_session_still_signing_in_opens_nothing(app, client, clock):
    totp_for(app, clock)
    conn = app.extensions["medcell"].store.conn()
    token = auth.login(conn, STAFF[0], STAFF[1], "10.0.0.1", clock(), 3600)
    assert signin.pending(conn, token, clock()).stage == signin.Stage.SECOND_FACTOR
    response = client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_reset_password_must_first_be_changed_on_the_page(app, client, admin_auth):
    reset = client.post(f"/api/v1/staff/{STAFF[0]}/password-reset", headers=admin_auth)
    password = reset.json["password"]
    refused = client.post("/api/v1/login", json={"username": STAFF[0], "password": password})
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "password_change_required"
    assert sessions(app) == 1, "only the admin's own session"


def test_a_required_second_factor_must_first_be_set_up_on_the_page(app, client):
    signin.set_required(app.extensions["medcell"].store.conn(), True)
    refused = login(client)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "second_factor_setup_required"


def test_a_facility_process_does_not_load_the_webauthn_library_until_a_ceremony():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, services.facility, services.facility.pages.security; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('webauthn', 'cbor2', 'OpenSSL', 'cryptography')))",
        ],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_sessions_of_a_facility_from_before_the_sign_in_step_stay_signed_in(make_app):
    import sqlite3

    from services.facility.core import migrations
    from tests.facility.conftest import login as api_login
    from tests.facility.schema_steps import undo_after_v11

    app = make_app()
    client = app.test_client()
    staff = api_login(client, *STAFF)
    medcell = app.extensions["medcell"]
    db = sqlite3.connect(medcell.config.database, isolation_level=None)
    undo_after_v11(db)
    db.execute(f"PRAGMA user_version = {migrations.MIGRATIONS.index(migrations.V12)}")
    medcell.store.close()

    again = make_app().test_client()
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    assert again.get("/api/v1/me", headers=staff).status_code == 200


def test_wrong_codes_from_many_clients_are_throttled_per_account(app, clock):
    """Whoever has the password cannot spread guesses of the code over many addresses."""
    totp_for(app, clock)
    statuses = []
    for n in range(5):
        one = app.test_client()
        one.environ_base["REMOTE_ADDR"] = f"10.0.{n}.1"
        statuses += [login(one, code="99999x").status_code for _ in range(4)]
    assert statuses == [401] * 20
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "10.0.99.1"
    refused = login(fresh, code="99999x")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert sessions(app) == 0

"""Staff sign-in that resists phishing: passkeys, TOTP with recovery codes, a required second
factor, a forgotten password through an admin, and the admins' confirm steps."""

import re

import pyotp

from tests.authenticator import SoftAuthenticator

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in, open_conversation

ORIGIN = BASE  # the practice's configured origin (conftest: public_url)


def ceremony(client, path: str, csrf: str, body: dict | None = None):
    """A JSON call of the pages' passkey script, with the page's CSRF token."""
    return client.post(f"{BASE}{path}", json=body or {}, headers={"X-CSRF-Token": csrf})


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code


def add_passkey(client, name: str = "Praxis-PC") -> SoftAuthenticator:
    page = client.get(f"{BASE}/staff/security")
    csrf = csrf_of(page)
    options = ceremony(client, "/staff/security/passkeys/options", csrf)
    assert options.status_code == 200 and options.json["rp"]["id"] == "medcell.test"
    key = SoftAuthenticator(ORIGIN)
    added = ceremony(
        client,
        "/staff/security/passkeys",
        csrf,
        {"name": name, "credential": key.create(options.json)},
    )
    assert added.status_code == 201, added.get_data(as_text=True)
    return key


def passkey_login(client, key: SoftAuthenticator, origin: str | None = None):
    page = client.get(f"{BASE}/login")
    csrf = csrf_of(page)
    options = ceremony(client, "/login/passkey/options", csrf)
    assert options.status_code == 200
    return ceremony(client, "/login/passkey", csrf, key.get(options.json, origin))


def passkey_rows(app) -> int:
    conn = app.extensions["medcell"].store.conn()
    return conn.execute("SELECT count(*) FROM staff_passkeys").fetchone()[0]


# -- passkeys -------------------------------------------------------------------------------


def test_staff_registers_a_passkey_and_signs_in_with_it_alone(app, staff):
    add_passkey(staff, "Empfang")
    key = add_passkey(staff, "Telefon")
    html = staff.get(f"{BASE}/staff/security").get_data(as_text=True)
    assert "Empfang" in html and "Telefon" in html
    fresh = browser(app)
    done = passkey_login(fresh, key)
    assert done.status_code == 200 and done.json == {"next": "/staff/"}
    home = fresh.get(f"{BASE}/staff/")
    assert home.status_code == 200 and STAFF[0] in home.get_data(as_text=True)


def test_a_passkey_answer_is_taken_once_and_its_challenge_expires(app, staff, clock):
    key = add_passkey(staff)
    client = browser(app)
    page = client.get(f"{BASE}/login")
    csrf = csrf_of(page)
    options = ceremony(client, "/login/passkey/options", csrf).json
    answer = key.get(options)
    assert ceremony(client, "/login/passkey", csrf, answer).status_code == 200
    replay = browser(app)
    replay_csrf = csrf_of(replay.get(f"{BASE}/login"))
    assert_error(ceremony(replay, "/login/passkey", replay_csrf, answer), 401, "unauthorized")
    late = ceremony(replay, "/login/passkey/options", replay_csrf).json
    clock.advance(121)
    assert_error(ceremony(replay, "/login/passkey", replay_csrf, key.get(late)), 401)
    assert replay.get(f"{BASE}/staff/").status_code == 303


def test_a_passkey_answer_made_for_another_site_is_refused(app, staff):
    key = add_passkey(staff)
    client = browser(app)
    phished = passkey_login(client, key, origin="https://medcell-test.example")
    assert_error(phished, 401)
    assert client.get(f"{BASE}/staff/").status_code == 303


def test_passkey_ceremonies_refuse_bad_input_with_the_error_shape(app, staff):
    client = browser(app)
    csrf = csrf_of(client.get(f"{BASE}/login"))
    assert_error(ceremony(client, "/login/passkey/options", "wrong"), 403, "csrf")
    for body in ({}, {"response": "x"}, {"response": {"clientDataJSON": "%%%"}}):
        assert_error(ceremony(client, "/login/passkey", csrf, body), 400, "bad_request")
    not_json = client.post(f"{BASE}/login/passkey", data="{", headers={"X-CSRF-Token": csrf})
    assert_error(not_json, 400)
    page_csrf = csrf_of(staff.get(f"{BASE}/staff/security"))
    options = ceremony(staff, "/staff/security/passkeys/options", page_csrf).json
    key = SoftAuthenticator(ORIGIN)
    for name in ("", " ", "x" * 61, "zwei\nZeilen", 7):
        bad = ceremony(
            staff,
            "/staff/security/passkeys",
            page_csrf,
            {"name": name, "credential": key.create(options)},
        )
        assert_error(bad, 400, "bad_request")
    assert_error(ceremony(staff, "/staff/security/passkeys", page_csrf, None), 400)
    forged = {"name": "x", "credential": key.create(options, origin="https://evil.example")}
    assert_error(ceremony(staff, "/staff/security/passkeys", page_csrf, forged), 400)
    good = {"name": "x", "credential": key.create(options)}
    assert_error(
        ceremony(staff, "/staff/security/passkeys", page_csrf, good),
        401,  # the forged answer used the challenge up: each one is single-use
    )
    assert passkey_rows(app) == 0, "nothing half-stored"


def test_a_registration_from_another_origin_is_refused(app, staff):
    csrf = csrf_of(staff.get(f"{BASE}/staff/security"))
    options = ceremony(staff, "/staff/security/passkeys/options", csrf).json
    forged = SoftAuthenticator("https://evil.example").create(options)
    assert_error(
        ceremony(staff, "/staff/security/passkeys", csrf, {"name": "x", "credential": forged}), 400
    )
    assert passkey_rows(app) == 0


def test_passkeys_are_renamed_and_removed_after_a_confirm_step(app, staff):
    add_passkey(staff, "Alt")
    page = staff.get(f"{BASE}/staff/security")
    html = page.get_data(as_text=True)
    passkey_id = re.search(r"/staff/security/passkeys/([A-Za-z0-9_-]+)/delete", html).group(1)
    bad = staff.post(
        f"{BASE}/staff/security/passkeys/{passkey_id}/name", data={"csrf": csrf_of(page)}
    )
    assert bad.status_code == 400 and "Alt" in bad.get_data(as_text=True)
    renamed = staff.post(
        f"{BASE}/staff/security/passkeys/{passkey_id}/name",
        data={"csrf": csrf_of(page), "name": "Neu"},
    )
    assert renamed.status_code == 200 and "„Neu“" in renamed.get_data(as_text=True)
    confirm = staff.get(f"{BASE}/staff/security/passkeys/{passkey_id}/delete")
    assert confirm.status_code == 200 and "Passkey entfernen?" in confirm.get_data(as_text=True)
    assert passkey_rows(app) == 1
    removed = staff.post(
        f"{BASE}/staff/security/passkeys/{passkey_id}/delete", data={"csrf": csrf_of(confirm)}
    )
    assert removed.status_code == 200 and passkey_rows(app) == 0
    assert staff.get(f"{BASE}/staff/security/passkeys/{passkey_id}/delete").status_code == 404


def test_another_accounts_passkey_cannot_be_renamed_or_removed(app, staff, admin):
    add_passkey(staff, "Meins")
    html = staff.get(f"{BASE}/staff/security").get_data(as_text=True)
    passkey_id = re.search(r"/staff/security/passkeys/([A-Za-z0-9_-]+)/delete", html).group(1)
    csrf = csrf_of(admin.get(f"{BASE}/staff/security"))
    taken = admin.post(f"{BASE}/staff/security/passkeys/{passkey_id}/delete", data={"csrf": csrf})
    assert taken.status_code == 404 and passkey_rows(app) == 1


def test_with_a_passkey_the_password_alone_opens_only_the_second_step(app, staff):
    key = add_passkey(staff)
    client = browser(app)
    response = log_in(client, *STAFF)
    assert response.status_code == 303 and response.headers["Location"] == "/login/verify"
    assert client.get(f"{BASE}/staff/").status_code == 303
    assert client.get(f"{BASE}/staff/security").headers["Location"] == "/login/verify"
    page = client.get(f"{BASE}/login/verify")
    assert "Mit Passkey anmelden" in page.get_data(as_text=True)
    options = ceremony(client, "/login/passkey/options", csrf_of(page))
    assert len(options.json["allowCredentials"]) == 1, "only this account's passkeys"
    done = ceremony(client, "/login/passkey", csrf_of(page), key.get(options.json))
    assert done.json == {"next": "/staff/"}
    assert client.get(f"{BASE}/staff/").status_code == 200


def test_the_second_step_takes_only_the_accounts_own_passkey(app, staff, admin):
    add_passkey(staff)
    other = add_passkey(admin)
    client = browser(app)
    log_in(client, *STAFF)
    page = client.get(f"{BASE}/login/verify")
    options = ceremony(client, "/login/passkey/options", csrf_of(page)).json
    assert_error(ceremony(client, "/login/passkey", csrf_of(page), other.get(options)), 401)
    assert client.get(f"{BASE}/staff/").status_code == 303


# -- TOTP and recovery codes ------------------------------------------------------------------


def set_up_totp(client, clock) -> tuple[pyotp.TOTP, list[str]]:
    page = client.get(f"{BASE}/staff/security")
    begun = client.post(f"{BASE}/staff/security/totp", data={"csrf": csrf_of(page)})
    html = begun.get_data(as_text=True)
    assert "<svg" in html
    secret = re.search(r'id="totp-secret" type="text" readonly value="([A-Z2-7]+)"', html).group(1)
    totp = pyotp.TOTP(secret)
    wrong = client.post(
        f"{BASE}/staff/security/totp/confirm", data={"csrf": csrf_of(begun), "code": "000000"}
    )
    assert wrong.status_code == 400 and 'aria-invalid="true"' in wrong.get_data(as_text=True)
    confirmed = client.post(
        f"{BASE}/staff/security/totp/confirm",
        data={"csrf": csrf_of(begun), "code": totp.at(clock() // 1_000_000)},
    )
    assert confirmed.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", confirmed.get_data(as_text=True))
    assert len(codes) == 8
    clock.advance(30)  # the next code: the one just used is spent
    return totp, codes


def second_step(app, code: str):
    client = browser(app)
    assert log_in(client, *STAFF).headers["Location"] == "/login/verify"
    page = client.get(f"{BASE}/login/verify")
    return client, client.post(f"{BASE}/login/verify", data={"csrf": csrf_of(page), "code": code})


def test_totp_codes_sign_in_once_each_and_recovery_codes_once(app, staff, clock):
    totp, codes = set_up_totp(staff, clock)
    now_code = totp.at(clock() // 1_000_000)
    client, wrong = second_step(app, "123456" if now_code != "123456" else "654321")
    assert wrong.status_code == 401 and "falsch oder wurde schon benutzt" in wrong.get_data(
        as_text=True
    )
    assert client.get(f"{BASE}/staff/").status_code == 303
    client, done = second_step(app, now_code)
    assert done.status_code == 303 and done.headers["Location"] == "/staff/"
    assert client.get(f"{BASE}/staff/").status_code == 200
    _, replay = second_step(app, now_code)
    assert replay.status_code == 401, "a used code is refused"
    _, recovered = second_step(app, codes[0].upper())
    assert recovered.status_code == 303
    _, again = second_step(app, codes[0])
    assert again.status_code == 401, "a recovery code works once"
    left = staff.get(f"{BASE}/staff/security").get_data(as_text=True)
    assert "Noch 7 Wiederherstellungscodes" in left


def test_the_totp_secret_and_recovery_codes_are_not_stored_in_clear(app, staff, clock, tmp_path):
    totp, codes = set_up_totp(staff, clock)
    conn = app.extensions["medcell"].store.conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    assert totp.secret.encode() not in data
    assert not any(c.encode() in data or c.replace("-", "").encode() in data for c in codes)


def test_wrong_codes_are_throttled(app, staff, clock):
    set_up_totp(staff, clock)
    client = browser(app)
    log_in(client, *STAFF)
    page = client.get(f"{BASE}/login/verify")
    statuses = [
        client.post(f"{BASE}/login/verify", data={"csrf": csrf_of(page), "code": "abc"}).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_totp_is_removed_after_a_confirm_step(app, staff, clock):
    set_up_totp(staff, clock)
    confirm = staff.get(f"{BASE}/staff/security/totp/delete")
    assert "Authenticator-App entfernen?" in confirm.get_data(as_text=True)
    staff.post(f"{BASE}/staff/security/totp/delete", data={"csrf": csrf_of(confirm)})
    assert log_in(browser(app), *STAFF).headers["Location"] == "/staff/"


# -- a second factor required -----------------------------------------------------------------


def test_when_required_an_account_without_a_factor_sets_one_up_first(app, admin, clock):
    page = admin.get(f"{BASE}/staff/admin")
    saved = admin.post(
        f"{BASE}/staff/admin/second-factor", data={"csrf": csrf_of(page), "required": "on"}
    )
    assert saved.status_code == 200 and "checked" in saved.get_data(as_text=True)
    client = browser(app)
    assert log_in(client, *STAFF).headers["Location"] == "/staff/security"
    assert client.get(f"{BASE}/staff/").status_code == 303
    owed = client.get(f"{BASE}/staff/security").get_data(as_text=True)
    assert "verlangt einen zweiten Faktor" in owed
    set_up_totp(client, clock)
    assert client.get(f"{BASE}/staff/").status_code == 200


def test_when_required_a_new_passkey_also_completes_the_sign_in(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    admin.post(f"{BASE}/staff/admin/second-factor", data={"csrf": csrf_of(page), "required": "on"})
    client = browser(app)
    log_in(client, *STAFF)
    add_passkey(client)
    assert client.get(f"{BASE}/staff/").status_code == 200


# -- forgotten password, admin reset ----------------------------------------------------------


def test_forgot_password_says_to_ask_an_admin(app):
    client = browser(app)
    login = client.get(f"{BASE}/login").get_data(as_text=True)
    assert 'href="/login/forgot"' in login
    page = client.get(f"{BASE}/login/forgot?lang=en")
    assert page.status_code == 200
    assert "ask a colleague with administrator rights" in page.get_data(as_text=True)


def test_a_reset_password_must_be_changed_at_the_next_sign_in(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    asked = admin.get(f"{BASE}/staff/admin/accounts/{STAFF[0]}/password")
    assert "Passwort zurücksetzen?" in asked.get_data(as_text=True)
    unconfirmed = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/password", data={"csrf": csrf_of(page)}
    )
    assert unconfirmed.status_code == 200 and 'name="confirm"' in unconfirmed.get_data(as_text=True)
    assert log_in(browser(app), *STAFF).status_code == 303, "nothing changed yet"
    shown = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/password",
        data={"csrf": csrf_of(page), "confirm": "yes"},
    )
    generated = re.search(
        r'id="generated" type="text" readonly value="([^"]+)"', shown.get_data(as_text=True)
    ).group(1)
    client = browser(app)
    assert log_in(client, STAFF[0], generated).headers["Location"] == "/login/password"
    assert client.get(f"{BASE}/staff/").status_code == 303
    form = client.get(f"{BASE}/login/password")
    csrf = csrf_of(form)
    differ = client.post(
        f"{BASE}/login/password",
        data={"csrf": csrf, "new": "ein ganz neues Passwort", "again": "ein anderes Passwort"},
    )
    assert differ.status_code == 400
    short = client.post(
        f"{BASE}/login/password", data={"csrf": csrf, "new": "kurz", "again": "kurz"}
    )
    assert short.status_code == 400
    done = client.post(
        f"{BASE}/login/password",
        data={"csrf": csrf, "new": "ein ganz neues Passwort", "again": "ein ganz neues Passwort"},
    )
    assert done.status_code == 303 and done.headers["Location"] == "/staff/"
    assert client.get(f"{BASE}/staff/").status_code == 200
    assert log_in(browser(app), STAFF[0], generated).status_code == 401
    assert log_in(browser(app), STAFF[0], "ein ganz neues Passwort").headers["Location"] == (
        "/staff/"
    )


# -- the admins' confirm steps ----------------------------------------------------------------


def test_removing_an_account_needs_the_confirm_step(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    asked = admin.get(f"{BASE}/staff/admin/accounts/{STAFF[0]}/delete")
    assert asked.status_code == 200 and "Konto entfernen?" in asked.get_data(as_text=True)
    unconfirmed = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/delete", data={"csrf": csrf_of(page)}
    )
    assert unconfirmed.status_code == 200
    assert log_in(browser(app), *STAFF).status_code == 303, "still there"
    assert admin.get(f"{BASE}/staff/admin/accounts/nobody/delete").status_code == 404
    gone = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/delete",
        data={"csrf": csrf_of(asked), "confirm": "yes"},
    )
    assert gone.status_code == 303
    assert log_in(browser(app), *STAFF).status_code == 401


def test_shortening_retention_says_how_many_conversations_go_first(app, staff, clock):
    open_conversation(staff, "Alt 1")
    open_conversation(staff, "Alt 2")
    clock.advance(3 * 86400)
    admin = browser(app)
    log_in(admin, *ADMIN)
    open_conversation(admin, "Neu")
    page = admin.get(f"{BASE}/staff/admin")
    asked = admin.post(
        f"{BASE}/staff/admin/retention", data={"csrf": csrf_of(page), "retention": "2d"}
    )
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "sofort 2 Unterhaltungen vollständig" in html
    assert "2 Tage" in html
    assert 'value="7d" selected' in admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    saved = admin.post(
        f"{BASE}/staff/admin/retention",
        data={"csrf": csrf_of(asked), "retention": "2d", "confirm": "yes"},
    )
    assert 'value="2d" selected' in saved.get_data(as_text=True)
    longer = admin.post(
        f"{BASE}/staff/admin/retention", data={"csrf": csrf_of(page), "retention": "5d"}
    )
    assert 'value="5d" selected' in longer.get_data(as_text=True), "longer needs no confirm"


def test_the_admin_page_links_to_confirm_steps_not_bare_buttons(admin):
    html = admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    assert f'href="/staff/admin/accounts/{STAFF[0]}/delete"' in html
    assert f'href="/staff/admin/accounts/{STAFF[0]}/password"' in html
    assert f'href="/staff/admin/accounts/{ADMIN[0]}/delete"' not in html


def test_every_sign_in_form_checks_the_token(app, staff, admin, clock):
    posts = {
        admin: ["/staff/admin/second-factor", "/staff/security/totp"],
        staff: ["/staff/security/totp/delete", "/staff/security/passkeys/x/delete"],
    }
    for client, paths in posts.items():
        for path in paths:
            assert client.post(f"{BASE}{path}", data={"required": "on"}).status_code == 403
    assert 'name="required" checked' not in admin.get(f"{BASE}/staff/admin").get_data(as_text=True)
    set_up_totp(staff, clock)
    client = browser(app)
    log_in(client, *STAFF)
    refused = client.post(f"{BASE}/login/verify", data={"code": "123456"})
    assert refused.status_code == 403


def test_a_sign_in_under_way_can_be_cancelled(app, staff, clock):
    set_up_totp(staff, clock)
    client = browser(app)
    log_in(client, *STAFF)
    page = client.get(f"{BASE}/login/verify")
    assert 'action="/login/cancel"' in page.get_data(as_text=True)
    assert client.post(f"{BASE}/login/cancel", data={}).status_code == 403
    cancelled = client.post(f"{BASE}/login/cancel", data={"csrf": csrf_of(page)})
    assert cancelled.status_code == 303 and cancelled.headers["Location"] == "/login"
    login_page = client.get(f"{BASE}/login")
    assert login_page.status_code == 200 and 'name="password"' in login_page.get_data(as_text=True)
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 1, "staff's own"


def test_an_admin_reset_can_also_remove_lost_factors(app, staff, admin, clock):
    set_up_totp(staff, clock)
    add_passkey(staff)
    asked = admin.get(f"{BASE}/staff/admin/accounts/{STAFF[0]}/password")
    assert 'name="factors"' in asked.get_data(as_text=True)
    shown = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/password",
        data={"csrf": csrf_of(asked), "confirm": "yes", "factors": "on"},
    )
    generated = re.search(
        r'id="generated" type="text" readonly value="([^"]+)"', shown.get_data(as_text=True)
    ).group(1)
    assert passkey_rows(app) == 0
    client = browser(app)
    assert log_in(client, STAFF[0], generated).headers["Location"] == "/login/password"


def test_passkey_sign_in_challenges_are_bounded(app, monkeypatch):
    from services.facility.core import passkeys

    monkeypatch.setattr(passkeys, "MAX_CHALLENGES", 3)
    client = browser(app)
    csrf = csrf_of(client.get(f"{BASE}/login"))
    for _ in range(3):
        assert ceremony(client, "/login/passkey/options", csrf).status_code == 200
    flooded = ceremony(client, "/login/passkey/options", csrf)
    assert_error(flooded, 429, "too_many_requests")
    assert flooded.headers["Retry-After"]


def test_the_security_pages_script_gets_json_errors(app, staff):
    refused = ceremony(staff, "/staff/security/passkeys/options", "wrong")
    assert_error(refused, 403, "csrf")

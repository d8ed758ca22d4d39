"""The admin page's account actions and the login page's throttle and deactivation messages."""

import re

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in


def test_admin_deactivates_and_reactivates_an_account(app, admin, staff):
    page = admin.get(f"{BASE}/staff/admin")
    done = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/active", data={"csrf": csrf_of(page)}
    )
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "ist deaktiviert" in html and "Reaktivieren" in html
    # The colleague's open session ended, and logging in again explains why it fails.
    assert staff.get(f"{BASE}/staff/").status_code == 303
    again = log_in(browser(app), *STAFF)
    assert again.status_code == 403 and "deaktiviert" in again.get_data(as_text=True)
    admin.post(f"{BASE}/staff/admin/accounts/{STAFF[0]}/active", data={"csrf": csrf_of(page)})
    assert log_in(browser(app), *STAFF).status_code == 303


def test_admin_resets_a_password_and_sees_it_once(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    shown = admin.post(
        f"{BASE}/staff/admin/accounts/{STAFF[0]}/password",
        data={"csrf": csrf_of(page), "confirm": "yes"},
    )
    html = shown.get_data(as_text=True)
    password = re.search(r'id="generated" type="text" readonly value="([^"]+)"', html).group(1)
    assert log_in(browser(app), STAFF[0], password).status_code == 303
    assert log_in(browser(app), *STAFF).status_code == 401


def test_own_account_has_no_deactivate_button_and_is_refused(admin):
    page = admin.get(f"{BASE}/staff/admin")
    html = page.get_data(as_text=True)
    assert f"Konto {ADMIN[0]} deaktivieren" not in html
    assert f"Konto {STAFF[0]} deaktivieren" in html
    refused = admin.post(
        f"{BASE}/staff/admin/accounts/{ADMIN[0]}/active", data={"csrf": csrf_of(page)}
    )
    assert refused.status_code == 409


def test_login_page_says_how_long_to_wait_and_others_still_get_in(app):
    client = browser(app)
    for _ in range(5):
        assert log_in(client, STAFF[0], "wrong password").status_code == 401
    locked = log_in(client, *STAFF)
    html = locked.get_data(as_text=True)
    assert locked.status_code == 429 and "15 Minuten" in html
    assert int(locked.headers["Retry-After"]) == 15 * 60
    assert log_in(client, *ADMIN).status_code == 303

"""Staff pages: login and logout, the list, a conversation without JavaScript, admin rights."""

import io
import re

from .conftest import ADMIN, BASE, STAFF, browser, csrf_of, log_in, open_conversation

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_pages_need_a_login(app):
    client = browser(app)
    for path in ("/staff/", "/staff/admin", "/staff/password"):
        response = client.get(f"{BASE}{path}")
        assert response.status_code == 303 and response.headers["Location"] == "/login"


def test_login_sets_a_server_side_session_cookie_and_logout_ends_it(app):
    client = browser(app)
    response = log_in(client, *STAFF)
    assert response.headers["Location"] == "/staff/"
    cookie = response.headers.getlist("Set-Cookie")
    staff_cookie = next(c for c in cookie if c.startswith("__Host-mc_staff="))
    assert all(flag in staff_cookie for flag in ("Secure", "HttpOnly", "SameSite=Strict"))
    token = client.get_cookie("__Host-mc_staff", domain="medcell.test").value
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 1
    assert token.encode() not in b"".join(
        r[0] for r in conn.execute("SELECT token_hash FROM staff_sessions")
    )
    home = client.get(f"{BASE}/staff/")
    assert home.status_code == 200 and "pfleger" in home.get_data(as_text=True)
    out = client.post(f"{BASE}/logout", data={"csrf": csrf_of(home)})
    assert out.status_code == 303
    assert conn.execute("SELECT count(*) FROM staff_sessions").fetchone()[0] == 0
    client.set_cookie("__Host-mc_staff", token, domain="medcell.test")
    assert client.get(f"{BASE}/staff/").status_code == 303, "the old cookie is worthless"


def test_wrong_password_shows_a_message(app):
    response = log_in(browser(app), STAFF[0], "not the password")
    assert response.status_code == 401
    assert "Benutzername oder Passwort ist falsch" in response.get_data(as_text=True)


def test_sessions_expire(app, staff, clock):
    assert staff.get(f"{BASE}/staff/").status_code == 200
    clock.advance(app.extensions["medcell"].config.session_seconds + 1)
    assert staff.get(f"{BASE}/staff/").status_code == 303


def test_new_conversation_shows_link_and_qr_code_once(app, staff):
    conv_id, link = open_conversation(staff, title="Laborwerte")
    assert re.fullmatch(r"/p/[A-Za-z0-9_-]{43}", link)
    page = staff.get(f"{BASE}/staff/")
    html = page.get_data(as_text=True)
    assert "Laborwerte" in html and link not in html, "the link is shown only once"
    created = staff.post(f"{BASE}/staff/conversations", data={"csrf": csrf_of(page)})
    body = created.get_data(as_text=True)
    assert "<svg" in body and "<path" in body and created.headers["Cache-Control"] == "no-store"


def test_reply_works_as_a_plain_form_post(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    assert page.headers["Cache-Control"] == "no-store"
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"body": "Bitte morgen <b>nüchtern</b> kommen.", "csrf": csrf_of(page)},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"].startswith(f"/staff/c/{conv_id}#m-")
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    assert "Bitte morgen &lt;b&gt;nüchtern&lt;/b&gt; kommen." in html


def test_empty_reply_explains_and_keeps_nothing(app, staff):
    conv_id, _ = open_conversation(staff)
    page = staff.get(f"{BASE}/staff/c/{conv_id}")
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages", data={"body": "  ", "csrf": csrf_of(page)}
    )
    assert sent.status_code == 400 and "Bitte schreiben Sie" in sent.get_data(as_text=True)


def test_attachments_are_checked_by_content_and_downloaded_intact(app, staff):
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    url = f"{BASE}/staff/c/{conv_id}/messages"
    fake = staff.post(url, data={"csrf": csrf, "file": (io.BytesIO(b"MZ\x90 exe"), "photo.png")})
    assert fake.status_code == 415 and "kein Foto" in fake.get_data(as_text=True)
    missing = staff.post(url, data={"csrf": csrf}, content_type="multipart/form-data")
    assert missing.status_code == 400
    sent = staff.post(
        url, data={"csrf": csrf, "body": "Befund", "file": (io.BytesIO(PNG), "befund.png")}
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    att_id = re.search(r"/staff/files/([A-Za-z0-9_-]{22})\?download=1", html).group(1)
    download = staff.get(f"{BASE}/staff/files/{att_id}?download=1")
    assert download.status_code == 200 and download.data == PNG
    assert "sandbox" in download.headers["Content-Security-Policy"]


def test_a_file_is_stored_as_what_its_bytes_show_whatever_the_browser_declared(app, staff):
    # Browsers guess the type from the file name; the pages, like the API, trust the content.
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf, "file": (io.BytesIO(jpeg), "scan.png", "image/png")},
    )
    assert sent.status_code == 303
    html = staff.get(f"{BASE}/staff/c/{conv_id}").get_data(as_text=True)
    att_id = re.search(r"/staff/files/([A-Za-z0-9_-]{22})", html).group(1)
    shown = staff.get(f"{BASE}/staff/files/{att_id}")
    assert shown.headers["Content-Type"] == "image/jpeg" and shown.data == jpeg


def test_too_large_file_gets_a_clear_message(app, staff):
    config = app.extensions["medcell"].config
    conv_id, _ = open_conversation(staff)
    csrf = csrf_of(staff.get(f"{BASE}/staff/c/{conv_id}"))
    big = PNG + b"\x00" * config.max_attachment_bytes
    sent = staff.post(
        f"{BASE}/staff/c/{conv_id}/messages",
        data={"csrf": csrf, "file": (io.BytesIO(big), "big.png")},
    )
    assert sent.status_code == 413 and "zu groß" in sent.get_data(as_text=True)


def test_staff_delete_through_the_page_removes_everything(app, staff):
    conv_id, link = open_conversation(staff)
    confirm = staff.get(f"{BASE}/staff/c/{conv_id}/delete")
    assert confirm.status_code == 200
    done = staff.post(f"{BASE}/staff/c/{conv_id}/delete", data={"csrf": csrf_of(confirm)})
    assert done.status_code == 200 and "nichts davon mehr gespeichert" in done.get_data(
        as_text=True
    )
    assert staff.get(f"{BASE}/staff/c/{conv_id}").status_code == 404
    assert browser(app).get(BASE + link).status_code == 404


def test_admin_pages_are_for_admins_only(app, staff, admin):
    denied = staff.get(f"{BASE}/staff/admin")
    assert denied.status_code == 403 and "nur für die Verwaltung" in denied.get_data(as_text=True)
    csrf = csrf_of(staff.get(f"{BASE}/staff/"))
    assert (
        staff.post(f"{BASE}/staff/admin/wipe", data={"csrf": csrf, "confirm": "praxis"}).status_code
        == 403
    )
    assert "/staff/admin" not in staff.get(f"{BASE}/staff/").get_data(as_text=True)
    assert admin.get(f"{BASE}/staff/admin").status_code == 200


def test_admin_adds_and_removes_accounts_and_sets_retention(app, admin):
    page = admin.get(f"{BASE}/staff/admin")
    added = admin.post(
        f"{BASE}/staff/admin/accounts",
        data={"csrf": csrf_of(page), "username": "mfa", "role": "staff"},
    )
    password = re.search(
        r'id="generated" type="text" readonly value="([^"]+)"', added.get_data(as_text=True)
    ).group(1)
    assert log_in(browser(app), "mfa", password).status_code == 303
    removed = admin.post(
        f"{BASE}/staff/admin/accounts/mfa/delete", data={"csrf": csrf_of(page), "confirm": "yes"}
    )
    assert removed.status_code == 303
    assert log_in(browser(app), "mfa", password).status_code == 401
    self_removal = admin.post(
        f"{BASE}/staff/admin/accounts/{ADMIN[0]}/delete",
        data={"csrf": csrf_of(page), "confirm": "yes"},
    )
    assert self_removal.status_code == 409
    saved = admin.post(
        f"{BASE}/staff/admin/retention",
        data={"csrf": csrf_of(page), "retention": "2d", "confirm": "yes"},
    )
    assert saved.status_code == 200 and 'value="2d" selected' in saved.get_data(as_text=True)
    too_long = admin.post(
        f"{BASE}/staff/admin/retention", data={"csrf": csrf_of(page), "retention": "8d"}
    )
    assert too_long.status_code == 400


def test_admin_wipe_names_the_loss_and_needs_the_slug(app, staff, admin):
    open_conversation(staff)
    open_conversation(staff)
    confirm = admin.get(f"{BASE}/staff/admin/wipe")
    assert "2 Unterhaltungen" in confirm.get_data(as_text=True)
    wrong = admin.post(
        f"{BASE}/staff/admin/wipe", data={"csrf": csrf_of(confirm), "confirm": "yes"}
    )
    assert wrong.status_code == 400
    conn = app.extensions["medcell"].store.conn()
    assert conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 2
    done = admin.post(
        f"{BASE}/staff/admin/wipe", data={"csrf": csrf_of(confirm), "confirm": "praxis"}
    )
    assert done.status_code == 200
    for table in ("conversations", "messages", "record_keys", "patient_sessions"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_password_change_ends_the_session(app, staff):
    page = staff.get(f"{BASE}/staff/password")
    changed = staff.post(
        f"{BASE}/staff/password",
        data={"csrf": csrf_of(page), "current": STAFF[1], "new": "a brand new passphrase"},
    )
    assert changed.status_code == 200
    assert staff.get(f"{BASE}/staff/").status_code == 303
    assert log_in(browser(app), STAFF[0], "a brand new passphrase").status_code == 303


def test_head_requests_answer_like_get_without_a_csrf_check(app, staff, admin):
    anonymous = browser(app)
    assert anonymous.head(f"{BASE}/login").status_code == 200
    assert staff.head(f"{BASE}/staff/password").status_code == 200
    assert admin.head(f"{BASE}/staff/admin").status_code == 200


def test_missing_keys_while_creating_a_conversation_say_so_not_title_too_long(app, staff):
    home = staff.get(f"{BASE}/staff/")
    app.extensions["medcell"].keyring.shred_all()
    created = staff.post(f"{BASE}/staff/conversations", data={"csrf": csrf_of(home), "title": "x"})
    body = created.get_data(as_text=True)
    assert created.status_code == 500
    assert "Schlüssel der Praxis fehlen" in body
    assert "Titel" not in body

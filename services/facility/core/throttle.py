"""Failed attempts (logins, tokens, PINs), counted in the facility's database.

Logins are counted three ways. Per account and client together, so one colleague's typos behind
the practice's shared address lock out only that colleague's account from there; per client alone,
a looser cap that stops one address from spraying guesses over many accounts; and per account
across all clients, a back-off: after a few failures every further attempt waits a growing delay
(at most a minute) before it is even checked. The back-off only delays, it never locks: the right
password after the wait always works, and a client that logged in to the account before is not
delayed at all, so guesses from elsewhere cannot keep its staff out.

A client is its address; an IPv6 client is its /64, which one subscriber usually holds whole.
Rows are named by an HMAC under a key derived from the facility's own secret (the store's
`throttle_key`), so the table holds no address and no typed name, not even as a hash anyone
could recompute.
"""

import ipaddress
import sqlite3

from services.facility.core import crypto, store
from services.facility.core.errors import ConfigError, TooManyRequests

LOGIN_LIMIT = (5, 15 * 60)  # failures per (account, client), window seconds
LOGIN_CLIENT_LIMIT = (30, 15 * 60)  # failures per client over all accounts
TOKEN_LIMIT = (30, 60)
PIN_LIMIT = (10, 15 * 60)
SECOND_FACTOR_LIMIT = (5, 15 * 60)  # wrong codes per (account, client) after the password
# Wrong codes per account over all clients: someone who has the password cannot spread guesses
# over many addresses (20 in 15 minutes leave a 6-digit code ~0.006 % a window).
SECOND_FACTOR_ACCOUNT_LIMIT = (20, 15 * 60)
# Per account over all clients: failures without delay, the longest delay, and the quiet seconds
# after which the account's count starts again. One colleague's typos (5) never reach it.
ACCOUNT_FREE, ACCOUNT_MAX_DELAY, ACCOUNT_QUIET = 10, 60, 15 * 60
KNOWN_CLIENT_SECONDS = 30 * 24 * 3600  # a successful login exempts its client this long
# Patient uploads per conversation: files, bytes and window seconds. Enough for a few photo
# series an hour; a script with a leaked link is stopped long before it fills the quota.
UPLOAD_LIMIT = (20, 200 * 1024 * 1024, 60 * 60)
# Patients asking for their link again: requests per client, and requests per mailbox that may
# send link mails (a stranger who knows the address cannot flood the mailbox).
LINK_REQUEST_LIMIT = (5, 15 * 60)
LINK_MAIL_LIMIT = (3, 60 * 60)
INTAKE_LIMIT = (3, 60 * 60)  # requests patients start themselves, per client (core/intake.py)
_LIMITS = {
    "login": LOGIN_LIMIT,
    "login_client": LOGIN_CLIENT_LIMIT,
    "pin": PIN_LIMIT,
    "second_factor": SECOND_FACTOR_LIMIT,
    "second_factor_account": SECOND_FACTOR_ACCOUNT_LIMIT,
    "link_request": LINK_REQUEST_LIMIT,
    "link_mail": LINK_MAIL_LIMIT,
    "intake": INTAKE_LIMIT,
}
_US = 1_000_000
_MAX_NAME = 64  # characters of a typed username that count


def client_network(address: str | None) -> str:
    """Who counts as one client: an IPv4 address, or the /64 an IPv6 address belongs to."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _key(conn: sqlite3.Connection, kind: str, subject: str) -> bytes:
    owner = getattr(conn, "store", None)
    key = owner.throttle_key if owner is not None else None
    if key is None:
        raise ConfigError("the throttle has no key for this database")
    return crypto.mac(key, f"{kind}|{subject}".encode())[:16]


def _row(conn: sqlite3.Connection, kind: str, subject: str) -> tuple[int, int] | None:
    return conn.execute(
        "SELECT failures, window_ends FROM throttle WHERE key = ?", (_key(conn, kind, subject),)
    ).fetchone()


def check(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    """Raise 429 (with the seconds left) while a client has used up its failures for this kind."""
    limit, _ = _LIMITS.get(kind, TOKEN_LIMIT)
    row = _row(conn, kind, client)
    if row and row[1] > now and row[0] >= limit:
        _refuse(row[1] - now)


def _refuse(wait_us: int) -> None:
    wait = -(-wait_us // _US)
    raise TooManyRequests(f"Too many failed attempts; try again in {_wait_text(wait)}.", wait)


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def record_failure(conn: sqlite3.Connection, kind: str, client: str, now: int) -> None:
    record_failures(conn, [(kind, client)], now)


def record_failures(conn: sqlite3.Connection, subjects: list[tuple[str, str]], now: int) -> None:
    """Count one failure against each (kind, client) subject, in one transaction."""
    with store.write(conn):
        _count(conn, subjects, now)


def _count(conn: sqlite3.Connection, subjects: list[tuple[str, str]], now: int) -> None:
    for kind, client in subjects:
        _, window = _LIMITS.get(kind, TOKEN_LIMIT)
        conn.execute(
            "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN window_ends > ?3 THEN failures + 1 ELSE 1 END, "
            "window_ends = CASE WHEN window_ends > ?3 THEN window_ends ELSE ?2 END",
            (_key(conn, kind, client), now + window * _US, now),
        )


# -- logins ---------------------------------------------------------------------------------


def _login_subjects(username: str, client: str) -> list[tuple[str, str]]:
    return [("login", f"{username[:_MAX_NAME]}|{client}"), ("login_client", client)]


def _account(username: str) -> str:
    return username[:_MAX_NAME]


def account_delay(failures: int) -> int:
    """Seconds an account's next attempt waits after `failures` recent ones (from anywhere)."""
    if failures < ACCOUNT_FREE:
        return 0
    return min(2 ** min(failures - ACCOUNT_FREE, 16), ACCOUNT_MAX_DELAY)


def check_login(conn: sqlite3.Connection, username: str, client: str, now: int) -> None:
    """Raise 429 with Retry-After while this login attempt must wait."""
    for kind, subject in _login_subjects(username, client):
        check(conn, kind, subject, now)
    row = _row(conn, "login_account", _account(username))
    if not row or row[1] <= now:
        return
    failures, quiet_ends = row
    allowed_at = quiet_ends - ACCOUNT_QUIET * _US + account_delay(failures) * _US
    if allowed_at > now and not _known(conn, username, client, now):
        _refuse(allowed_at - now)


def _known(conn: sqlite3.Connection, username: str, client: str, now: int) -> bool:
    row = _row(conn, "login_known", f"{_account(username)}|{client}")
    return bool(row and row[1] > now)


def record_login_failure(conn: sqlite3.Connection, username: str, client: str, now: int) -> None:
    """Count a failed login against the account and client, the client, and the account."""
    with store.write(conn):
        _count(conn, _login_subjects(username, client), now)
        conn.execute(
            "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 1, ?2) "
            "ON CONFLICT (key) DO UPDATE SET "
            "failures = CASE WHEN window_ends > ?3 THEN failures + 1 ELSE 1 END, "
            "window_ends = ?2",
            (_key(conn, "login_account", _account(username)), now + ACCOUNT_QUIET * _US, now),
        )


def record_login_success(conn: sqlite3.Connection, username: str, client: str, now: int) -> None:
    """Remember that this client logs in to this account: the account's back-off spares it."""
    with store.write(conn):
        conn.execute(
            "INSERT INTO throttle (key, failures, window_ends) VALUES (?, 0, ?) "
            "ON CONFLICT (key) DO UPDATE SET window_ends = excluded.window_ends",
            (
                _key(conn, "login_known", f"{_account(username)}|{client}"),
                now + KNOWN_CLIENT_SECONDS * _US,
            ),
        )


# -- uploads --------------------------------------------------------------------------------


def count_upload(conn: sqlite3.Connection, conv_id: str, nbytes: int, now: int) -> None:
    """Count one patient upload into its conversation, or raise 429 if the link used up its share.

    Call it inside the upload's write transaction: a refused or failed upload counts nothing.
    """
    files, volume, window = UPLOAD_LIMIT
    row = conn.execute(
        "SELECT uploads, bytes, window_ends FROM upload_throttle WHERE conversation_id = ?",
        (conv_id,),
    ).fetchone()
    if row is None or row[2] <= now:
        uploads, sent, ends = 0, 0, now + window * _US
    else:
        uploads, sent, ends = row
    if uploads + 1 > files or sent + nbytes > volume:
        raise TooManyRequests(
            "Too many uploads through this link; try again later.", (ends - now) // _US + 1
        )
    conn.execute(
        "INSERT INTO upload_throttle (conversation_id, uploads, bytes, window_ends) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
        "uploads = excluded.uploads, bytes = excluded.bytes, window_ends = excluded.window_ends",
        (conv_id, uploads + 1, sent + nbytes, ends),
    )


def check_second_factor(conn: sqlite3.Connection, staff_id: int, client: str, now_us: int) -> None:
    """Raise TooManyRequests while the account's wrong codes, from this client or from all,
    are at their limit."""
    check(conn, "second_factor", f"{staff_id}|{client}", now_us)
    check(conn, "second_factor_account", str(staff_id), now_us)


def second_factor_failed(conn: sqlite3.Connection, staff_id: int, client: str, now_us: int) -> None:
    """Count one wrong code against the account from this client and against the account."""
    subjects = [("second_factor", f"{staff_id}|{client}"), ("second_factor_account", str(staff_id))]
    record_failures(conn, subjects, now_us)

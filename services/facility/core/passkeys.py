"""Staff passkeys (WebAuthn, through the `webauthn` library): register, list, rename, remove,
and sign in with one.

The relying party is the facility's own origin (Config.public_url): its host is the RP ID and
the only origin a response is accepted from, so a passkey made here is useless to a phishing
site on any other name. Every ceremony's challenge is random, stored hashed, single-use (the
row is deleted when a response names it, whatever the outcome) and lives CHALLENGE_SECONDS.

The library (with cryptography, cbor2, pyOpenSSL) is imported on a ceremony's first use, not at
start: it adds ~8 MiB to a process that most requests never need it in (docs/dependencies.md).
"""

import base64
import hashlib
import json
import secrets
import sqlite3
from urllib.parse import urlsplit

from services.facility.core import store
from services.facility.core.errors import (
    BadRequest,
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
)

CHALLENGE_SECONDS = 120
MAX_PASSKEYS = 10
MAX_RESPONSE_BYTES = 16 * 1024
# Live challenges at most: the sign-in's options are asked for before anyone is known, so their
# rows are bounded, not left to grow with a flood of requests.
MAX_CHALLENGES = 1000
NAME_CHARS = 60
_US = 1_000_000


def relying_party(public_url: str) -> tuple[str, str]:
    """(RP ID, origin) of the facility whose origin is `public_url` (https://host[:port]/)."""
    parts = urlsplit(public_url)
    return parts.hostname or "", public_url.rstrip("/")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: object) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_RESPONSE_BYTES:
        raise BadRequest("expected base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as e:
        raise BadRequest("expected base64url text") from e


def check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > NAME_CHARS:
        raise BadRequest(f"a passkey's name is 1-{NAME_CHARS} characters")
    name = value.strip()
    if any(not c.isprintable() for c in name):
        raise BadRequest("a passkey's name is one line of text")
    return name


def _store_challenge(conn, challenge: bytes, purpose: str, staff_id: int | None, now: int):
    with store.write(conn):
        conn.execute("DELETE FROM webauthn_challenges WHERE expires_at <= ?", (now,))
        (live,) = conn.execute("SELECT count(*) FROM webauthn_challenges").fetchone()
        if live >= MAX_CHALLENGES:
            raise TooManyRequests(
                "too many passkey sign-ins under way: try again in a minute", CHALLENGE_SECONDS
            )
        conn.execute(
            "INSERT INTO webauthn_challenges (challenge_hash, purpose, staff_id, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (hashlib.sha256(challenge).digest(), purpose, staff_id, now + CHALLENGE_SECONDS * _US),
        )


def _parse(response: object) -> dict:
    """The browser's credential (PublicKeyCredential as JSON), bounded in size."""
    if isinstance(response, str):
        if len(response) > MAX_RESPONSE_BYTES:
            raise BadRequest("the passkey response is too large")
        try:
            response = json.loads(response)
        except ValueError as e:
            raise BadRequest("the passkey response is not JSON") from e
    if not isinstance(response, dict) or not isinstance(response.get("response"), dict):
        raise BadRequest("the passkey response is malformed")
    return response


def _take_challenge(conn, credential: dict, purpose: str, now: int) -> tuple[bytes, int | None]:
    """The challenge the response answers, if this facility issued it for `purpose` and it is
    still fresh; used up either way."""
    try:
        client_data = json.loads(_unb64url(credential["response"].get("clientDataJSON")))
        challenge = _unb64url(client_data["challenge"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadRequest("the passkey response is malformed") from e
    with store.write(conn):
        row = conn.execute(
            "DELETE FROM webauthn_challenges WHERE challenge_hash = ? "
            "RETURNING purpose, staff_id, expires_at",
            (hashlib.sha256(challenge).digest(),),
        ).fetchone()
    if row is None or row[0] != purpose or row[2] <= now:
        raise Unauthorized("the passkey request has expired or was used: please try again")
    return challenge, row[1]


# -- registration ---------------------------------------------------------------------------


def registration_options(
    conn: sqlite3.Connection,
    staff_id: int,
    username: str,
    display_name: str,
    public_url: str,
    rp_name: str,
    now: int,
) -> dict:
    """What navigator.credentials.create() needs, as JSON-ready data."""
    (count,) = conn.execute(
        "SELECT count(*) FROM staff_passkeys WHERE staff_id = ?", (staff_id,)
    ).fetchone()
    if count >= MAX_PASSKEYS:
        raise Conflict(f"an account has at most {MAX_PASSKEYS} passkeys")
    import webauthn
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp_id, _ = relying_party(public_url)
    existing = [
        PublicKeyCredentialDescriptor(id=row[0])
        for row in conn.execute(
            "SELECT credential_id FROM staff_passkeys WHERE staff_id = ?", (staff_id,)
        )
    ]
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=staff_id.to_bytes(8, "big"),  # staff ids are never reused
        user_name=username,
        user_display_name=display_name,
        timeout=CHALLENGE_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=existing,
    )
    _store_challenge(conn, options.challenge, "register", staff_id, now)
    return json.loads(webauthn.options_to_json(options))


def register(
    conn: sqlite3.Connection,
    staff_id: int,
    response: object,
    name: object,
    public_url: str,
    now: int,
) -> dict:
    """Check the authenticator's answer to this account's challenge and keep its public key."""
    label = check_name(name)
    credential = _parse(response)
    challenge, owner = _take_challenge(conn, credential, "register", now)
    if owner != staff_id:
        raise Unauthorized("the passkey request has expired or was used: please try again")
    import webauthn
    from webauthn.helpers.exceptions import WebAuthnException

    rp_id, origin = relying_party(public_url)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as e:
        raise BadRequest("the passkey could not be verified") from e
    passkey_id = secrets.token_urlsafe(12)
    with store.write(conn):
        try:
            conn.execute(
                "INSERT INTO staff_passkeys (id, staff_id, credential_id, public_key, sign_count, "
                "name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    passkey_id,
                    staff_id,
                    verified.credential_id,
                    verified.credential_public_key,
                    verified.sign_count,
                    label,
                    now,
                ),
            )
        except sqlite3.IntegrityError as e:
            raise Conflict("this passkey is registered already") from e
    return {"id": passkey_id, "name": label, "created_at": now}


# -- sign-in --------------------------------------------------------------------------------


def login_options(
    conn: sqlite3.Connection, public_url: str, now: int, staff_id: int | None = None
) -> dict:
    """What navigator.credentials.get() needs: any passkey of this facility (sign-in with a
    passkey alone), or one of `staff_id`'s (the second step after the password)."""
    import webauthn
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

    rp_id, _ = relying_party(public_url)
    allowed = []
    if staff_id is not None:
        allowed = [
            PublicKeyCredentialDescriptor(id=row[0])
            for row in conn.execute(
                "SELECT credential_id FROM staff_passkeys WHERE staff_id = ?", (staff_id,)
            )
        ]
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _store_challenge(conn, options.challenge, "login", staff_id, now)
    return json.loads(webauthn.options_to_json(options))


def authenticate(
    conn: sqlite3.Connection, response: object, public_url: str, now: int
) -> tuple[int, int | None]:
    """The account whose passkey signed this facility's challenge, and the account the
    challenge was issued for (None: a sign-in with the passkey alone); Unauthorized if none."""
    credential = _parse(response)
    challenge, owner = _take_challenge(conn, credential, "login", now)
    credential_id = _unb64url(credential.get("rawId") or credential.get("id"))
    row = conn.execute(
        "SELECT id, staff_id, public_key, sign_count FROM staff_passkeys WHERE credential_id = ?",
        (credential_id,),
    ).fetchone()
    if row is None or (owner is not None and row[1] != owner):
        raise Unauthorized("this passkey is not registered here")
    import webauthn
    from webauthn.helpers.exceptions import WebAuthnException

    rp_id, origin = relying_party(public_url)
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=row[2],
            credential_current_sign_count=row[3],
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as e:
        raise Unauthorized("the passkey could not be verified") from e
    with store.write(conn):
        conn.execute(
            "UPDATE staff_passkeys SET sign_count = ?, last_used = ? WHERE id = ?",
            (verified.new_sign_count, now, row[0]),
        )
    return row[1], owner


# -- the account's own list -----------------------------------------------------------------


def list_for(conn: sqlite3.Connection, staff_id: int) -> list[dict]:
    return [
        {"id": i, "name": n, "created_at": c, "last_used": u}
        for i, n, c, u in conn.execute(
            "SELECT id, name, created_at, last_used FROM staff_passkeys WHERE staff_id = ? "
            "ORDER BY created_at",
            (staff_id,),
        )
    ]


def rename(conn: sqlite3.Connection, staff_id: int, passkey_id: str, name: object) -> str:
    label = check_name(name)
    with store.write(conn):
        done = conn.execute(
            "UPDATE staff_passkeys SET name = ? WHERE id = ? AND staff_id = ?",
            (label, passkey_id, staff_id),
        )
    if done.rowcount != 1:
        raise NotFound("no such passkey")
    return label


def remove(conn: sqlite3.Connection, staff_id: int, passkey_id: str) -> None:
    with store.write(conn):
        done = conn.execute(
            "DELETE FROM staff_passkeys WHERE id = ? AND staff_id = ?", (passkey_id, staff_id)
        )
    if done.rowcount != 1:
        raise NotFound("no such passkey")

"""TOTP (RFC 6238, through pyotp) as the fallback second factor, and one-time recovery codes.

The secret is sealed (AES-256-GCM) under a key derived from the facility's signing key, which
lives with the other keys and never in the data directory: a copy of the database alone yields
no secret. It is bound to its account's id. A code is taken once: the time step of the last code
accepted is kept, and a code of that step or an earlier one is refused (no replay). Recovery
codes are shown once and kept only as keyed hashes; each works once.
"""

import hmac
import secrets
import sqlite3

import pyotp

from services.facility.core import crypto, store
from services.facility.core.errors import BadRequest, Conflict, NotFound

STEP_SECONDS = 30
DRIFT_STEPS = 1  # a code of the step before or after is still taken (clocks drift)
RECOVERY_CODES = 8
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_MAX_CODE = 32


class Totp:
    """One facility's TOTP secrets and recovery codes, sealed with keys from its keyring."""

    def __init__(self, keyring):
        self.keyring = keyring

    def _key(self, purpose: str) -> bytes:
        return crypto.derive_key(self.keyring.signing_seed(), purpose)

    def _aad(self, staff_id: int) -> bytes:
        return crypto.aad(self.keyring.facility, "staff_totp", str(staff_id), "secret")

    def _secret(self, sealed: bytes, staff_id: int) -> str:
        return crypto.unseal(self._key("totp"), sealed, self._aad(staff_id)).decode()

    def begin(self, conn: sqlite3.Connection, staff_id: int) -> str:
        """A new, not yet confirmed secret for the account (replacing an unconfirmed one)."""
        secret = pyotp.random_base32()
        sealed = crypto.seal(self._key("totp"), secret.encode(), self._aad(staff_id))
        with store.write(conn):
            row = conn.execute(
                "SELECT confirmed FROM staff_totp WHERE staff_id = ?", (staff_id,)
            ).fetchone()
            if row and row[0]:
                raise Conflict("this account has an authenticator app already: remove it first")
            conn.execute(
                "INSERT INTO staff_totp (staff_id, secret, confirmed, last_step) "
                "VALUES (?, ?, 0, 0) ON CONFLICT (staff_id) DO UPDATE SET "
                "secret = excluded.secret, confirmed = 0, last_step = 0",
                (staff_id, sealed),
            )
        return secret

    def pending_secret(self, conn: sqlite3.Connection, staff_id: int) -> str | None:
        """The secret being set up (shown again until it is confirmed), or None."""
        row = conn.execute(
            "SELECT secret FROM staff_totp WHERE staff_id = ? AND confirmed = 0", (staff_id,)
        ).fetchone()
        return self._secret(row[0], staff_id) if row else None

    def confirm(self, conn: sqlite3.Connection, staff_id: int, code: object, now: int) -> list[str]:
        """The first code from the app switches TOTP on; returns new recovery codes (once)."""
        with store.write(conn):
            row = conn.execute(
                "SELECT secret, confirmed FROM staff_totp WHERE staff_id = ?", (staff_id,)
            ).fetchone()
            if row is None or row[1]:
                raise NotFound("no authenticator app is being set up")
            if not self._take(conn, staff_id, row[0], 0, code, now):
                raise BadRequest("the code is wrong or has been used")
            conn.execute("UPDATE staff_totp SET confirmed = 1 WHERE staff_id = ?", (staff_id,))
            return self._new_recovery_codes(conn, staff_id)

    def verify(self, conn: sqlite3.Connection, staff_id: int, code: object, now: int) -> bool:
        """Whether `code` is a fresh TOTP code or an unused recovery code of the account."""
        if not isinstance(code, str) or not code.strip() or len(code) > _MAX_CODE:
            return False
        code = code.strip().replace(" ", "").replace("-", "").lower()
        with store.write(conn):
            row = conn.execute(
                "SELECT secret, last_step FROM staff_totp WHERE staff_id = ? AND confirmed = 1",
                (staff_id,),
            ).fetchone()
            if row and code.isdigit() and len(code) == 6:
                return self._take(conn, staff_id, row[0], row[1], code, now)
            deleted = conn.execute(
                "DELETE FROM staff_recovery_codes WHERE staff_id = ? AND code_hash = ?",
                (staff_id, self._hash(code)),
            )
            return deleted.rowcount == 1

    def remove(self, conn: sqlite3.Connection, staff_id: int) -> None:
        with store.write(conn):
            conn.execute("DELETE FROM staff_totp WHERE staff_id = ?", (staff_id,))
            conn.execute("DELETE FROM staff_recovery_codes WHERE staff_id = ?", (staff_id,))

    def recovery_left(self, conn: sqlite3.Connection, staff_id: int) -> int:
        (n,) = conn.execute(
            "SELECT count(*) FROM staff_recovery_codes WHERE staff_id = ?", (staff_id,)
        ).fetchone()
        return n

    def _take(
        self, conn, staff_id: int, sealed: bytes, last_step: int, code: object, now: int
    ) -> bool:
        """Accept a code of a step after `last_step` and remember its step (inside a write)."""
        if not isinstance(code, str):
            return False
        code = code.strip().replace(" ", "")
        if not code.isdigit() or len(code) != 6:
            return False
        otp = pyotp.TOTP(self._secret(sealed, staff_id), interval=STEP_SECONDS)
        current = now // 1_000_000 // STEP_SECONDS
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
            if step > last_step and hmac.compare_digest(otp.at(step * STEP_SECONDS), code):
                conn.execute(
                    "UPDATE staff_totp SET last_step = ? WHERE staff_id = ?", (step, staff_id)
                )
                return True
        return False

    def _hash(self, code: str) -> bytes:
        return crypto.mac(self._key("recovery-codes"), code.encode())

    def _new_recovery_codes(self, conn: sqlite3.Connection, staff_id: int) -> list[str]:
        codes = [
            "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
            for _ in range(RECOVERY_CODES)
        ]
        conn.execute("DELETE FROM staff_recovery_codes WHERE staff_id = ?", (staff_id,))
        conn.executemany(
            "INSERT INTO staff_recovery_codes (staff_id, code_hash) VALUES (?, ?)",
            [(staff_id, self._hash(c)) for c in codes],
        )
        return [f"{c[:5]}-{c[5:]}" for c in codes]


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer
    )

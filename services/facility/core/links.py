"""The patient's link kept to be sent again, and the practice's text for the link mail.

Only the hash of a link opens anything (patients.link_conversation). Besides it, the current
token is kept sealed under the conversation's record key, so staff can mail or print the same link
again without making a new one (which would end the patient's sessions). A new link replaces it;
the conversation's deletion takes it along with its key.
"""

import hmac
import sqlite3

from medcell_common.notifications import TemplateError, check_template
from services.facility.core import accounts as auth
from services.facility.core import crypto, store
from services.facility.core.errors import BadRequest, CryptoError

TEMPLATE_SETTING = "link_mail_template"


def _aad(facility: str, conv_id: str) -> bytes:
    return crypto.aad(facility, "patient_links", conv_id, "token")


def keep(conn: sqlite3.Connection, key: bytes, facility: str, conv_id: str, token: str) -> None:
    """Keep `token` as the conversation's link to send again; inside the caller's write."""
    conn.execute(
        "INSERT INTO patient_links (conversation_id, token) VALUES (?, ?) "
        "ON CONFLICT (conversation_id) DO UPDATE SET token = excluded.token",
        (conv_id, crypto.seal(key, token.encode(), _aad(facility, conv_id))),
    )


def current(conn: sqlite3.Connection, keyring, facility: str, conv_id: str) -> str | None:
    """The conversation's current link token, or None (a link made before links were kept)."""
    row = conn.execute(
        "SELECT l.token, c.patient_token_hash FROM patient_links l "
        "JOIN conversations c ON c.id = l.conversation_id WHERE l.conversation_id = ?",
        (conv_id,),
    ).fetchone()
    if row is None:
        return None
    try:
        token = crypto.unseal(keyring.record_key(conn, conv_id), row[0], _aad(facility, conv_id))
    except CryptoError:
        return None
    token = token.decode()
    # Only ever the link that opens the conversation now, never an older one.
    return token if hmac.compare_digest(auth.token_hash(token), row[1]) else None


def keeper(keyring, facility: str, conv_id: str):
    """For patients.reissue: keeps the new token in the same write."""

    def keep_new(conn: sqlite3.Connection, token: str) -> None:
        keep(conn, keyring.record_key(conn, conv_id), facility, conv_id, token)

    return keep_new


def template(conn: sqlite3.Connection) -> str | None:
    """The practice's own text for the link mail, or None (the relay's standard text)."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (TEMPLATE_SETTING,)).fetchone()
    return row[0] if row else None


def set_template(conn: sqlite3.Connection, text: object) -> str | None:
    """Store the practice's text (by the relay's rules); None or "" brings back the standard."""
    if text is None or (isinstance(text, str) and not text.strip()):
        with store.write(conn):
            conn.execute("DELETE FROM settings WHERE name = ?", (TEMPLATE_SETTING,))
        return None
    try:
        text = check_template(text)
    except TemplateError as e:
        raise BadRequest(str(e)) from e
    with store.write(conn):
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (TEMPLATE_SETTING, text),
        )
    return text

"""Undo the sign-in step of the schema (migrations.V13) in a test's database, so that a test
that rolls a database back to an older version finds it as that version left it."""

import sqlite3


def undo_v13(db: sqlite3.Connection) -> None:
    for table in ("webauthn_challenges", "staff_recovery_codes", "staff_totp", "staff_passkeys"):
        db.execute(f"DROP TABLE {table}")
    db.execute("ALTER TABLE staff_sessions DROP COLUMN stage")
    db.execute("ALTER TABLE staff DROP COLUMN must_change_password")

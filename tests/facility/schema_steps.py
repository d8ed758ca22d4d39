"""Undo the schema steps after v11 in a test's database, so that a test that rolls a database
back to an older version finds it as that version left it."""

import sqlite3


def undo_v12(db: sqlite3.Connection) -> None:
    """The staff sign-in step (migrations.V12)."""
    for table in ("webauthn_challenges", "staff_recovery_codes", "staff_totp", "staff_passkeys"):
        db.execute(f"DROP TABLE {table}")
    db.execute("ALTER TABLE staff_sessions DROP COLUMN stage")
    db.execute("ALTER TABLE staff DROP COLUMN must_change_password")


def undo_v13(db: sqlite3.Connection) -> None:
    """Message corrections and the automatic reply (migrations.V13)."""
    for table, column in (
        ("messages", "edited_at"),
        ("messages", "deleted_at"),
        ("conversations", "auto_reply_at"),
    ):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")


def undo_v14(db: sqlite3.Connection) -> None:
    """Patient links kept to send again, remembered devices (migrations.V14)."""
    db.execute("DROP TABLE patient_devices")
    db.execute("DROP TABLE patient_links")


def undo_after_v11(db: sqlite3.Connection) -> None:
    """Every step after v11, newest first."""
    undo_v14(db)
    undo_v13(db)
    undo_v12(db)

"""Management commands run inside a facility container: `python -m services.facility COMMAND`.

Each prints one JSON object on stdout; failures print `Error: …` on stderr and exit non-zero.
"""

import binascii
import json
import sys
import time
from base64 import b64decode
from pathlib import Path

import click

from medcell_common import tombstones as tombstone_format
from services.facility.core import accounts as auth
from services.facility.core import backups, open_facility, passwords, quota, usage
from services.facility.core.config import Config
from services.facility.core.errors import FacilityError
from services.facility.core.keys import Keyring


def _clock() -> int:
    return time.time_ns() // 1000


def _open(config: Config) -> tuple:
    facility = open_facility(config, _clock)
    return facility.store.conn(), facility.keyring


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Administer this facility's store and keys."""
    try:
        ctx.obj = Config.from_env()
    except FacilityError as e:
        raise click.ClickException(e.message) from e


@cli.command("create-admin")
@click.option("--username", default="admin", show_default=True)
@click.pass_obj
def create_admin(config: Config, username: str) -> None:
    """Create the first admin account and print its one-time password."""
    conn, _ = _open(config)
    if conn.execute("SELECT count(*) FROM staff").fetchone()[0]:
        raise click.ClickException("staff accounts exist already; admins add more in the app")
    password = passwords.generate_password()
    auth.create_staff(conn, username, password, "admin", _clock())
    _emit({"username": username, "password": password})


@cli.command("rotate-key")
@click.pass_obj
def rotate_key(config: Config) -> None:
    """Make a new key version, rewrap every record key, destroy the old versions."""
    conn, keyring = _open(config)
    _emit(keyring.rotate(conn))


@cli.command("shred-keys")
@click.pass_obj
def shred_keys(config: Config) -> None:
    """Overwrite and remove every key-encryption key: all stored data becomes unreadable."""
    keyring = Keyring(config.key_dir, config.facility, _clock)
    _emit({"destroyed": keyring.shred_all() if config.key_dir.exists() else 0})


@cli.command("set-quota")
@click.option("--facility", "facility_quota", metavar="SIZE", help="The facility's quota (2GiB).")
@click.option("--conversation", metavar="SIZE", help="Each conversation's quota (200MiB).")
@click.pass_obj
def set_quota(config: Config, facility_quota: str | None, conversation: str | None) -> None:
    """Set the storage quotas (the operator's decision; admins cannot change them in the app)."""
    if facility_quota is None and conversation is None:
        raise click.ClickException("give --facility SIZE, --conversation SIZE or both")
    facility = open_facility(config, _clock)
    try:
        quota.set_quotas(facility.store.conn(), facility_quota, conversation)
    except FacilityError as e:
        raise click.ClickException(e.message) from e
    _emit(usage(facility))


@cli.command("usage")
@click.pass_obj
def show_usage(config: Config) -> None:
    """Print the quotas and what the facility uses (content-free numbers)."""
    _emit(usage(open_facility(config, _clock)))


@cli.command("receipts")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.pass_obj
def receipts(config: Config, limit: int) -> None:
    """Print the deletion receipts (newest first) and the key that signs them."""
    facility = open_facility(config, _clock)
    signer = facility.conversations.receipts
    _emit(
        {
            "receipts": signer.recent(facility.store.conn(), limit),
            "receipt_key": signer.public_key(),
        }
    )


@cli.command("receipt-key")
@click.pass_obj
def receipt_key(config: Config) -> None:
    """Print the Ed25519 public key that signs this facility's deletion receipts."""
    _emit(open_facility(config, _clock).conversations.receipts.public_key())


@cli.command("wipe")
@click.pass_obj
def wipe(config: Config) -> None:
    """Delete all patient data, as the admin's wipe does, and print its signed receipt."""
    facility = open_facility(config, _clock)
    result = facility.conversations.delete_all(facility.store.conn())
    _emit({**result, "receipt_key": facility.conversations.receipts.public_key()})


@cli.command()
@click.option("--id", "backup_id", required=True, help="The backup's id (16 hex digits).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_obj
def backup(config: Config, backup_id: str, out: Path) -> None:
    """Write a sealed snapshot and its keys into OUT; the backup key comes on stdin."""
    _emit(backups.make(config, _clock, _key_from_stdin(), backup_id, out))


@cli.command()
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_obj
def restore(config: Config, source: Path) -> None:
    """Replace data and keys with a backup's, then delete what expired; key on stdin."""
    key = _key_from_stdin()
    _emit(backups.restore(config, _clock, key, source, _tombstones_from_stdin()))


def _key_from_stdin() -> bytes:
    """The backup key as one base64 line on stdin: arguments and variables are visible to others."""
    line = sys.stdin.buffer.readline(128).strip()
    try:
        key = b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise click.ClickException("expected the 32-byte backup key as one base64 line on stdin")
    return key


def _tombstones_from_stdin() -> list[dict]:
    """After the key, one JSON line {"tombstones": [...]} (or none): deletions since the backup."""
    # One line, not "until EOF": the engine's attach need not close our stdin.
    data = sys.stdin.buffer.readline(tombstone_format.MAX_RESTORE_BYTES + 1)
    if not data.strip():
        return []
    if len(data) > tombstone_format.MAX_RESTORE_BYTES:
        raise click.ClickException("too many tombstones on stdin")
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or set(body) != {"tombstones"}:
            raise ValueError('expected {"tombstones": [...]}')
        return tombstone_format.check_all(body["tombstones"])
    except ValueError as e:
        raise click.ClickException(f"the tombstones on stdin are invalid: {e}") from e


def _emit(obj: dict) -> None:
    click.echo(json.dumps(obj))


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.ClickException as e:
        click.echo(f"Error: {e.format_message()}", err=True)
        sys.exit(1)
    except click.Abort:
        sys.exit(1)
    except FacilityError as e:
        click.echo(f"Error: {e.message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

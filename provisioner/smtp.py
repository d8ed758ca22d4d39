"""The operator's SMTP server: parsed from MEDCELL_SMTP_URL at `medcell up`, kept in one 0600 file.

The URL may hold a password, so it never becomes an environment variable, label or log line of
any container: `medcell up` writes it to `$MEDCELL_HOME/secrets/smtp.json` (mode 0600, in a 0700
directory), which only the supervisor can read (it mounts `$MEDCELL_HOME`; the gateway and the
facilities mount other directories). Without MEDCELL_SMTP_URL the file is removed and no mail
is sent. Facilities only learn *that* mail is on (MEDCELL_MAIL=on).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from provisioner.errors import InvalidArgument

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how mail leaves the installation."""

    scheme: str
    host: str
    port: int
    mail_from: str
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        # Never print the password, not even in a traceback's locals.
        return f"SmtpSettings({self.scheme}://{self.host}:{self.port}, from={self.mail_from})"

    def to_json(self) -> dict:
        return {
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "mail_from": self.mail_from,
            "username": self.username,
            "password": self.password,
        }


def parse(url: str, mail_from: str | None) -> SmtpSettings:
    """`smtp://`, `smtp+starttls://` or `smtps://`, user:password optional; InvalidArgument."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidArgument(f"MEDCELL_SMTP_URL is not a valid URL ({e})") from e
    if parts.scheme not in SCHEMES:
        raise InvalidArgument(
            "MEDCELL_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
        )
    if not parts.hostname:
        raise InvalidArgument("MEDCELL_SMTP_URL needs a host, e.g. smtp+starttls://mail:587")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidArgument("MEDCELL_SMTP_URL must not have a path, query or fragment")
    if bool(parts.username) != (parts.password is not None):
        raise InvalidArgument("MEDCELL_SMTP_URL needs both user and password, or neither")
    if not mail_from or not _ADDRESS.match(mail_from):
        raise InvalidArgument("MEDCELL_MAIL_FROM must be one plain address, e.g. medcell@host")
    return SmtpSettings(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or SCHEMES[parts.scheme],
        mail_from=mail_from,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def from_env(env: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The settings the operator gave `medcell up`, or None when MEDCELL_SMTP_URL is unset."""
    env = os.environ if env is None else env
    url = env.get("MEDCELL_SMTP_URL")
    if not url:
        return None
    return parse(url, env.get("MEDCELL_MAIL_FROM"))


def settings_path(home: Path) -> Path:
    return home / "secrets" / "smtp.json"


def configured(home: Path) -> bool:
    """Whether this installation sends mail (the file exists)."""
    return settings_path(home).exists()


def save(home: Path, settings: SmtpSettings | None) -> bool:
    """Write (or, for None, remove) the settings file; returns whether anything changed."""
    path = settings_path(home)
    if settings is None:
        if not path.exists():
            return False
        path.unlink()
        return True
    data = json.dumps(settings.to_json(), sort_keys=True).encode()
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


def load(home: Path) -> SmtpSettings | None:
    """The saved settings, or None; an unreadable file counts as none (and is reported)."""
    path = settings_path(home)
    try:
        raw = json.loads(path.read_bytes())
        return SmtpSettings(
            scheme=str(raw["scheme"]),
            host=str(raw["host"]),
            port=int(raw["port"]),
            mail_from=str(raw["mail_from"]),
            username=raw.get("username"),
            password=raw.get("password"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"{path} is unreadable; run `medcell up` again") from e

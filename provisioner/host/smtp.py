"""The operator's SMTP server: parsed from MEDCELL_SMTP_URL at `medcell up`, kept in one 0600 file.

The URL may hold a password, so it never becomes an environment variable, label or log line of
any container: `medcell up` writes it to `$MEDCELL_HOME/secrets/smtp.json` (mode 0600, in a 0700
directory), which only the supervisor can read (it mounts `$MEDCELL_HOME`; the gateway and the
facilities mount other directories). Without MEDCELL_SMTP_URL the file is removed and no mail
is sent. Facilities only learn *that* mail is on (MEDCELL_MAIL=on).

MEDCELL_MAIL_RATE, the relay's per-facility limit, is kept in the same file, so that the
supervisor picks up a new limit at the next `up` as it does a new password.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from medcell_common.files import write_atomic
from provisioner.host.errors import InvalidArgument

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
DEFAULT_RATE = "30/m,1000/d"
_RATE_PART = re.compile(r"([1-9][0-9]{0,6})/([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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
    # Per facility: (mails, seconds) pairs, each a token bucket; "30/m,1000/d" by default.
    rate: tuple[tuple[int, int], ...] = ((30, 60), (1000, 86400))

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
            "rate": [list(limit) for limit in self.rate],
        }


def parse_rate(text: str) -> tuple[tuple[int, int], ...]:
    """`30/m,1000/d`: at most N mails per unit (s, m, h or d) each; InvalidArgument otherwise."""
    limits = []
    for part in text.split(","):
        match = _RATE_PART.fullmatch(part.strip())
        if not match:
            raise InvalidArgument(
                f"MEDCELL_MAIL_RATE {text!r} must be limits like 30/m,1000/d "
                "(a whole number of mails per s, m, h or d, separated by commas)"
            )
        limits.append((int(match[1]), _UNIT_SECONDS[match[2]]))
    if len({seconds for _, seconds in limits}) != len(limits):
        raise InvalidArgument(f"MEDCELL_MAIL_RATE {text!r} names a unit twice")
    return tuple(sorted(limits, key=lambda limit: limit[1]))


def parse(url: str, mail_from: str | None, rate: str = DEFAULT_RATE) -> SmtpSettings:
    """`smtp://`, `smtp+starttls://` or `smtps://`, user:password optional (not over plain
    `smtp://`); InvalidArgument."""
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
    if parts.username and parts.scheme == "smtp":
        raise InvalidArgument(
            "MEDCELL_SMTP_URL: a user and password are only sent over TLS; use "
            "smtp+starttls:// (STARTTLS required) or smtps://, not plain smtp://"
        )
    if not mail_from or not _ADDRESS.match(mail_from):
        raise InvalidArgument("MEDCELL_MAIL_FROM must be one plain address, e.g. medcell@host")
    return SmtpSettings(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or SCHEMES[parts.scheme],
        mail_from=mail_from,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        rate=parse_rate(rate),
    )


def from_env(env: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The settings the operator gave `medcell up`, or None when MEDCELL_SMTP_URL is unset."""
    env = os.environ if env is None else env
    url = env.get("MEDCELL_SMTP_URL")
    if not url:
        return None
    return parse(url, env.get("MEDCELL_MAIL_FROM"), env.get("MEDCELL_MAIL_RATE") or DEFAULT_RATE)


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
    write_atomic(path, data, mode=0o600)
    return True


def load(home: Path) -> SmtpSettings | None:
    """The saved settings, or None; InvalidArgument for a file that is unreadable or asks for
    what `parse` refuses (credentials over plain smtp://)."""
    path = settings_path(home)
    try:
        raw = json.loads(path.read_bytes())
        settings = SmtpSettings(
            scheme=str(raw["scheme"]),
            host=str(raw["host"]),
            port=int(raw["port"]),
            mail_from=str(raw["mail_from"]),
            username=raw.get("username"),
            password=raw.get("password"),
            rate=tuple((int(n), int(s)) for n, s in raw.get("rate") or SmtpSettings.rate),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(f"{path} is unreadable; run `medcell up` again") from e
    if settings.scheme not in SCHEMES or (settings.username and settings.scheme == "smtp"):
        raise InvalidArgument(f"{path} asks for plain smtp:// with a password; run `medcell up`")
    if not settings.rate or any(n < 1 or s < 1 for n, s in settings.rate):
        raise InvalidArgument(f"{path} has no valid mail rate; run `medcell up` again")
    return settings

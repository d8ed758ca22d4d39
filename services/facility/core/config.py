"""Configuration from environment variables, read in one place (create_app)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from medcell_common.origins import facility_origin
from medcell_common.rules import check_slug, parse_duration, parse_retention
from medcell_common.sizes import parse_size
from services.facility.core.errors import ConfigError

MIN_SPACE_RESERVE = 1024 * 1024


def check_public_url(url: str) -> str:
    """MEDCELL_PUBLIC_URL as an origin with a trailing slash; ConfigError unless it is one.

    Only https, a host name, an optional port, no user, path, query or fragment: links built
    from it go into mails and patients' hands.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"MEDCELL_PUBLIC_URL {url!r} is not a URL") from e
    host = parts.hostname or ""
    labels = host.split(".")
    if (
        parts.scheme != "https"
        or not host
        or len(labels) < 2
        or any(c.isspace() or not c.isprintable() for c in url)
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "%" in url
        or any(
            not label or not label.replace("-", "").isalnum() or not label.isascii()
            for label in labels
        )
    ):
        raise ConfigError(
            f"MEDCELL_PUBLIC_URL {url!r} must be the facility's origin, https://<host>[:port]/"
        )
    return f"https://{host}{'' if port in (None, 443) else f':{port}'}/"


@dataclass(frozen=True)
class Config:
    facility: str
    facility_name: str
    data_dir: Path
    key_dir: Path
    retention: int
    max_body_chars: int = 10_000
    max_title_chars: int = 200
    max_attachment_bytes: int = 24 * 1024 * 1024
    session_seconds: int = 12 * 3600
    key_rotation_seconds: int = 86400
    scheduler: bool = True
    # Free space held back on the data volume so that deletion works when it is full (core/space).
    space_reserve_bytes: int = 8 * 1024 * 1024
    # Set by the provisioner when the installation has an SMTP server: only then are mails queued.
    mail: bool = False
    # The facility's own origin (https://<slug>.<domain>[:port]/), set by the provisioner: every
    # absolute link (patient links, links in mails) is built from it, never from a request's Host.
    # Empty: the development default, https://<facility>.localhost:8443/.
    public_url: str = ""
    # Where deletions drop their tombstones (core/tombstones.py), set by the provisioner to a
    # folder in the socket directory; empty: none are dropped (a facility run by hand).
    tombstone_dir: str = ""
    # The practice's time zone (MEDCELL_TIMEZONE): its opening hours, the automatic reply.
    timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if not self.public_url:
            object.__setattr__(self, "public_url", facility_origin(self.facility))
        object.__setattr__(self, "public_url", check_public_url(self.public_url))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        facility = env.get("MEDCELL_FACILITY", "")
        try:
            check_slug(facility)
        except ValueError as e:
            raise ConfigError(f"MEDCELL_FACILITY: {e}") from e
        try:
            retention = parse_retention(env.get("MEDCELL_RETENTION", "7d"))
            rotation = parse_duration(env.get("MEDCELL_KEY_ROTATION", "1d"))
            session = parse_duration(env.get("MEDCELL_SESSION_TTL", "12h"))
            max_attachment = int(env.get("MEDCELL_MAX_ATTACHMENT_BYTES", 24 * 1024 * 1024))
            reserve = parse_size(env.get("MEDCELL_SPACE_RESERVE", "8MiB"))
        except ValueError as e:
            raise ConfigError(str(e)) from e
        config = cls(
            facility=facility,
            facility_name=env.get("MEDCELL_FACILITY_NAME", "") or facility,
            data_dir=Path(env.get("MEDCELL_DATA_DIR", "/data")),
            key_dir=Path(env.get("MEDCELL_KEY_DIR", "/keys")),
            retention=retention,
            key_rotation_seconds=rotation,
            session_seconds=session,
            max_attachment_bytes=max_attachment,
            space_reserve_bytes=reserve,
            scheduler=env.get("MEDCELL_SCHEDULER", "on") != "off",
            mail=env.get("MEDCELL_MAIL", "off") == "on",
            public_url=env.get("MEDCELL_PUBLIC_URL", ""),
            tombstone_dir=env.get("MEDCELL_TOMBSTONE_DIR", ""),
            timezone=env.get("MEDCELL_TIMEZONE", "") or "Europe/Berlin",
        )
        config.check()
        return config

    def check(self) -> None:
        """Refuse layouts that would break the promises: keys must live apart from the data."""
        try:
            ZoneInfo(self.timezone)
        except (ValueError, ZoneInfoNotFoundError) as e:
            raise ConfigError(f"MEDCELL_TIMEZONE {self.timezone!r} is not a time zone") from e
        if self.space_reserve_bytes < MIN_SPACE_RESERVE:
            # Less would not hold the WAL of one deletion step (core/space, SHED_CHUNKS).
            raise ConfigError("MEDCELL_SPACE_RESERVE must be at least 1MiB")
        data, keys = self.data_dir.resolve(), self.key_dir.resolve()
        if data == keys or data in keys.parents or keys in data.parents:
            raise ConfigError(
                f"key directory {keys} and data directory {data} must not contain each other: "
                "a copy of the data must never include its keys"
            )

    def url(self, path: str) -> str:
        """An absolute link into this facility: its origin plus `path` (no leading slash)."""
        return self.public_url + path.lstrip("/")

    @property
    def database(self) -> Path:
        return self.data_dir / "facility.db"

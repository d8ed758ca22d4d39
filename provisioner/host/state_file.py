"""Per-facility state files ($MEDCELL_HOME/facilities/<slug>.json), shared by CLI and supervisor.

Writers hold the facility's lock (locks.facility_lock); readers may read at any time, since files
are replaced atomically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medcell_common import strictjson
from medcell_common.interfaces import Desired, Health
from provisioner.host.config import Config
from provisioner.host.home import write_json_atomic
from provisioner.host.opening import parse_opens
from provisioner.host.validation import SLUG_RE

DESIRED = tuple(Desired)
HEALTH = tuple(Health)
# A wake_at that is there but unusable (NaN, Infinity, not a number): taken as overdue, so a
# sleeping facility is woken and asked for its deadline instead of never being woken at all.
UNKNOWN_DEADLINE = 0.0
_NOT_FINITE = object()


@dataclass
class FacilityState:
    """What medcell wants of one facility, and what it knows about its sleep."""

    desired: str = Desired.RUNNING  # stopped = the operator's decision
    idle: int | None = None  # idle timeout in seconds; None = installation default; 0 = never
    asleep: bool = False  # set when the supervisor/CLI starts putting it to sleep
    wake_at: float | None = None  # unix seconds: the next_deadline it reported before sleeping
    slept_at: float | None = None
    health: str = Health.OK  # unhealthy: probes failing, or a wake failed
    error: str | None = None  # content-free reason when unhealthy
    # Starts of its opening hours as it last reported them (provisioner/host/opening.py).
    opens: list[int] = field(default_factory=list)

    def idle_timeout(self, config: Config) -> int:
        """The idle timeout in force: its own, else the installation's (0 = never sleep)."""
        return config.idle_timeout if self.idle is None else self.idle


def state_path(config: Config, slug: str) -> Path:
    return config.state_dir / f"{slug}.json"


def load(config: Config, slug: str) -> FacilityState:
    """The facility's state; a missing or unreadable file gives the defaults."""
    try:
        # A NaN or Infinity spoils only its own field, never the desired state beside it.
        raw = strictjson.loads(state_path(config, slug).read_text(), nonfinite=_NOT_FINITE)
    except (OSError, ValueError):
        return FacilityState()
    return _from_dict(raw)


def save(config: Config, slug: str, st: FacilityState) -> None:
    """Replace the facility's state file atomically (mode 0600)."""
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_json_atomic(state_path(config, slug), asdict(st), mode=0o600)


def remove(config: Config, slug: str) -> None:
    state_path(config, slug).unlink(missing_ok=True)


def load_all(config: Config) -> dict[str, FacilityState]:
    """Every facility that has a state file, by slug."""
    try:
        paths = sorted(config.state_dir.iterdir())
    except FileNotFoundError:
        return {}
    found = {}
    for path in paths:
        # Skips the temporary files of an atomic write in progress (".<name>.<random>").
        if path.suffix == ".json" and SLUG_RE.fullmatch(path.stem):
            found[path.stem] = load(config, path.stem)
    return found


def _from_dict(raw: object) -> FacilityState:
    """Keep each field only if it has the right type, so one bad value cannot poison the rest."""
    st = FacilityState()
    if not isinstance(raw, dict):
        return st
    if raw.get("desired") in DESIRED:
        st.desired = raw["desired"]
    idle = raw.get("idle")
    if idle is None or (isinstance(idle, int) and not isinstance(idle, bool) and idle >= 0):
        st.idle = idle
    if isinstance(raw.get("asleep"), bool):
        st.asleep = raw["asleep"]
    st.wake_at = _time(raw.get("wake_at"), unusable=UNKNOWN_DEADLINE)
    st.slept_at = _time(raw.get("slept_at"), unusable=None)
    if raw.get("health") in HEALTH:
        st.health = raw["health"]
    if raw.get("error") is None or isinstance(raw.get("error"), str):
        st.error = raw.get("error")
    st.opens = list(parse_opens(raw.get("opens")))
    return st


def _time(value: object, unusable: float | None) -> float | None:
    """Unix seconds if the value is a finite number, None if null, else `unusable`."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            return unusable
        if math.isfinite(seconds):
            return seconds
    return unusable

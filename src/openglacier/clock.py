"""Injected time (design principle 5) and timing profiles.

Everything time-dependent (inventory cadence, upload expiry, job completion later)
reads a `Clock`, never `datetime.now()` directly. `ManualClock` lets tests and the
admin API move time forward deterministically.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Starts at a given instant (default: the real now) and moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            if instant < self._now:
                raise ValueError("time only moves forward")
            self._now = instant


@dataclass(frozen=True)
class TimingProfile:
    """How long things take. `inventory_interval=None` means: after every write."""

    name: str
    inventory_interval: timedelta | None
    upload_expiry: timedelta
    completed_upload_retention: timedelta
    expedited: timedelta
    standard: timedelta
    bulk: timedelta
    inventory_job: timedelta
    job_retention: timedelta = timedelta(hours=24)  # completed jobs and output (spec 4.2)

    def job_delay(self, tier: str | None) -> timedelta:
        """How long a job of `tier` (None: inventory) takes on this profile."""
        return {
            "Expedited": self.expedited,
            "Standard": self.standard,
            "Bulk": self.bulk,
        }.get(tier or "", self.inventory_job)

    def with_delays(self, delays: dict[str, timedelta]) -> TimingProfile:
        """Per-tier overrides: keys are tier names or "Inventory"."""
        fields = {TIER_FIELDS[name]: delay for name, delay in delays.items()}
        return replace(self, **fields)  # type: ignore[arg-type]


TIER_FIELDS = {
    "Expedited": "expedited",
    "Standard": "standard",
    "Bulk": "bulk",
    "Inventory": "inventory_job",
}
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def parse_duration(text: str) -> timedelta:
    """Seconds ("3600", "0.5") or units ("5m", "1h30m", "2d", "45s")."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f"not a duration: {text!r} (use seconds or e.g. 5m, 1h30m)") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(seconds=seconds)


def parse_tier_delays(text: str) -> dict[str, timedelta]:
    """`Bulk=3600,Standard=5m` (also separated by spaces or semicolons)."""
    delays: dict[str, timedelta] = {}
    for item in re.split(r"[,;\s]+", text.strip()):
        if not item:
            continue
        name, sep, duration = item.partition("=")
        tier = next((t for t in TIER_FIELDS if t.lower() == name.strip().lower()), None)
        if not sep or tier is None:
            raise ValueError(
                f"bad tier delay {item!r}: use TIER=DURATION with TIER one of "
                + ", ".join(TIER_FIELDS)
            )
        delays[tier] = parse_duration(duration)
    return delays


PROFILES: dict[str, TimingProfile] = {
    "instant": TimingProfile(
        name="instant",
        inventory_interval=None,
        upload_expiry=timedelta(hours=24),
        completed_upload_retention=timedelta(hours=24),
        expedited=timedelta(0),
        standard=timedelta(0),
        bulk=timedelta(0),
        inventory_job=timedelta(0),
    ),
    "fast": TimingProfile(
        name="fast",
        inventory_interval=timedelta(seconds=30),
        upload_expiry=timedelta(hours=24),
        completed_upload_retention=timedelta(hours=24),
        expedited=timedelta(seconds=1),
        standard=timedelta(seconds=5),
        bulk=timedelta(seconds=10),
        inventory_job=timedelta(seconds=5),
    ),
    "aws": TimingProfile(
        name="aws",
        inventory_interval=timedelta(hours=24),
        upload_expiry=timedelta(hours=24),
        completed_upload_retention=timedelta(hours=24),
        expedited=timedelta(minutes=1),
        standard=timedelta(hours=4),
        bulk=timedelta(hours=8),
        inventory_job=timedelta(hours=4),
    ),
}


def iso_ms(instant: datetime) -> str:
    """`2012-03-20T17:03:43.221Z`: server timestamps (spec 1.4)."""
    u = instant.astimezone(UTC)
    # Formatted by hand: strftime was a tenth of a ListJobs page's server time.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
        f"{u.second:02d}.{u.microsecond // 1000:03d}Z"
    )


def iso_seconds(instant: datetime) -> str:
    """`2015-04-07T00:26:18Z`: inventory documents (spec 1.4, 9 #18)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

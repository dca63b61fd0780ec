"""Injected time (design principle 5) and timing profiles.

Everything time-dependent (inventory cadence, upload expiry, job completion later)
reads a `Clock`, never `datetime.now()` directly. `ManualClock` lets tests and the
admin API move time forward deterministically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
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
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_seconds(instant: datetime) -> str:
    """`2015-04-07T00:26:18Z`: inventory documents (spec 1.4, 9 #18)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

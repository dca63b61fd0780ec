"""When the scrubber runs and how fast it reads: pure, on the injected clock.

A pass starts once `interval` has passed since the previous pass started (so
passes begin every `interval`, whatever each one took); a pass in progress
(started, not finished: the process stopped, or another node's lease ran out)
is always due, and is continued from its cursor.

Reads are paced by a token bucket: tokens accrue at `rate` bytes per second up
to `burst`; a read of n bytes takes n tokens, and when that leaves the bucket
in debt the scrubber sleeps until it is paid off. So the scrubber reads at most
`rate` bytes per second on average, never more than `burst` at once, and the
disk bandwidth above that is left to requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from openglacier.clock import Clock
from openglacier.ports import ScrubState

MIB = 1 << 20
# One read step: a few leaves, so a step costs milliseconds, the lease is
# renewed between steps, and a slow rate still moves in small pieces.
MAX_STEP = 4 * MIB


def pass_due(state: ScrubState | None, now: datetime, interval: timedelta) -> bool:
    """Whether a scrubber should be scrubbing at `now`."""
    if state is None or state.pass_started_at is not None:
        return True  # never scrubbed, or a pass to continue
    return state.last_started_at is None or now - state.last_started_at >= interval


def next_pass_at(state: ScrubState | None, interval: timedelta) -> datetime | None:
    """When the next pass is due; None if it is due now (no pass yet, or one
    in progress)."""
    if state is None or state.pass_started_at is not None or state.last_started_at is None:
        return None
    return state.last_started_at + interval


def step_bytes(rate: float) -> int:
    """Bytes per read step at `rate` bytes/s (0: unpaced): at most a second's
    worth, so a pause between steps never exceeds about a second."""
    if rate <= 0:
        return MAX_STEP
    return max(64 * 1024, min(MAX_STEP, int(rate)))


class TokenBucket:
    """At most `rate` bytes per second on average, `burst` at most at once."""

    def __init__(self, rate: float, clock: Clock, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else rate  # a second's worth
        self.clock = clock
        self.tokens = self.burst
        self.stamp = clock.now()

    def reserve(self, n: int) -> float:
        """Take `n` tokens for bytes just read; the seconds to wait before
        the next read (until the debt is paid off)."""
        now = self.clock.now()
        # A clock stepped backwards adds nothing (a wall clock may step).
        elapsed = max((now - self.stamp).total_seconds(), 0.0)
        self.stamp = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

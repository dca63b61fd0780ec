"""The scrubber's schedule and rate limit (domain/scrub/pacing.py), on a
ManualClock: time moves only when a test (or the fake sleep) moves it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openglacier.clock import ManualClock
from openglacier.domain.scrub.pacing import (
    MAX_STEP,
    MIB,
    TokenBucket,
    next_pass_at,
    pass_due,
    step_bytes,
)
from openglacier.ports import ScrubState

T0 = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)
INTERVAL = 30 * DAY


def test_a_pass_is_due_when_none_ran_yet_or_one_is_in_progress() -> None:
    assert pass_due(None, T0, INTERVAL)
    assert next_pass_at(None, INTERVAL) is None
    never = ScrubState()
    assert pass_due(never, T0, INTERVAL)
    running = ScrubState(pass_started_at=T0, last_started_at=T0 - DAY)
    assert pass_due(running, T0, INTERVAL)  # continued whatever the interval says
    assert next_pass_at(running, INTERVAL) is None


def test_the_next_pass_starts_an_interval_after_the_previous_one_started() -> None:
    # The last pass took ten days; the next is due 30 days after it started.
    done = ScrubState(last_started_at=T0, last_finished_at=T0 + 10 * DAY)
    assert next_pass_at(done, INTERVAL) == T0 + INTERVAL
    assert not pass_due(done, T0 + 10 * DAY, INTERVAL)
    assert not pass_due(done, T0 + INTERVAL - timedelta(seconds=1), INTERVAL)
    assert pass_due(done, T0 + INTERVAL, INTERVAL)
    assert pass_due(replace(done, last_started_at=None), T0, INTERVAL)


def drive(bucket: TokenBucket, clock: ManualClock, total: int, step: int) -> float:
    """Read `total` bytes in `step`s as the scrubber does, the fake sleep moving
    the clock; the seconds that passed."""
    start = clock.now()
    done = 0
    while done < total:
        wait = bucket.reserve(step)
        assert wait >= 0
        clock.advance(timedelta(seconds=wait))
        done += step
    return (clock.now() - start).total_seconds()


def test_the_bucket_holds_reads_to_the_rate_on_average() -> None:
    clock = ManualClock(T0)
    bucket = TokenBucket(2 * MIB, clock)  # 2 MiB/s, a second's burst
    elapsed = drive(bucket, clock, 200 * MIB, MAX_STEP)
    # 200 MiB at 2 MiB/s is 100 s, less the 2 MiB the full bucket started with.
    assert 98.0 <= elapsed <= 100.0


def test_idle_time_fills_the_bucket_only_up_to_the_burst() -> None:
    clock = ManualClock(T0)
    bucket = TokenBucket(MIB, clock)
    clock.advance(timedelta(hours=1))  # an hour idle is worth one second, not 3600
    assert bucket.reserve(10 * MIB) == pytest.approx(9.0)


def test_small_reads_within_the_burst_do_not_wait() -> None:
    clock = ManualClock(T0)
    bucket = TokenBucket(4 * MIB, clock)
    assert bucket.reserve(MIB) == 0.0
    assert bucket.reserve(3 * MIB) == 0.0
    assert bucket.reserve(MIB) == pytest.approx(0.25)


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    clock = ManualClock(T0 + DAY)
    bucket = TokenBucket(MIB, clock)
    assert bucket.reserve(3 * MIB) == pytest.approx(2.0)
    bucket.clock = ManualClock(T0)  # an hour earlier than the bucket's last look
    assert bucket.reserve(MIB) == pytest.approx(3.0)


def test_steps_are_about_a_second_of_reading_within_bounds() -> None:
    assert step_bytes(0) == MAX_STEP  # unpaced
    assert step_bytes(16 * MIB) == MAX_STEP
    assert step_bytes(MIB) == MIB
    assert step_bytes(1000) == 64 * 1024
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, ManualClock(T0))

"""The kept output plans are bounded by bytes and least recently used first."""

from __future__ import annotations

from datetime import UTC, datetime

from openglacier.domain.jobs.output_plans import OVERHEAD, OutputPlans
from openglacier.records import Job, JobAction, JobStatus, Segment

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: str) -> Job:
    return Job(
        job_id=job_id,
        vault_id=1,
        action=JobAction.ARCHIVE,
        status=JobStatus.SUCCEEDED,
        created_at=NOW,
        due_at=NOW,
    )


def segments(leaves: int) -> list[Segment]:
    return [Segment("a", 0, 0, leaves, "blob", b"\0" * 32 * leaves)]


def test_a_plan_is_kept_and_found() -> None:
    plans = OutputPlans()
    plans.put(job("j1"), segments(4))
    found = plans.get("j1")
    assert found is not None
    assert found[0].job_id == "j1"
    assert found[1] == tuple(segments(4))
    assert plans.get("other") is None


def test_a_plan_over_the_per_plan_limit_is_not_kept() -> None:
    plans = OutputPlans(per_plan=10_000)
    plans.put(job("big"), segments(1000))  # 32,000 bytes of leaf hashes
    assert plans.get("big") is None
    assert plans.used == 0


def test_the_least_recently_used_go_first_once_over_budget() -> None:
    cost = 2 * OVERHEAD + 32 * 10
    plans = OutputPlans(budget=3 * cost)
    for name in ("a", "b", "c"):
        plans.put(job(name), segments(10))
    assert plans.get("a") is not None  # now the most recently used
    plans.put(job("d"), segments(10))
    assert plans.get("b") is None  # the least recently used went
    assert {n for n in "acd" if plans.get(n) is not None} == {"a", "c", "d"}
    assert plans.used == 3 * cost
    plans.drop("a")
    assert plans.used == 2 * cost
    assert len(plans) == 2


def test_a_plan_is_read_again_after_its_time_to_live() -> None:
    """So a blob switched by `blobs rewrite` is never read under its old key
    for longer than the plan's TTL after the switch."""
    clock = [100.0]
    plans = OutputPlans(ttl=10.0, now=lambda: clock[0])
    plans.put(job("j"), segments(1))
    clock[0] += 9.9
    assert plans.get("j") is not None
    clock[0] += 0.2
    assert plans.get("j") is None
    assert plans.used == 0

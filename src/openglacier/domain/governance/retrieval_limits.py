"""What InitiateJob checks last (spec 1.8 step 9): the account's data retrieval
policy for Standard retrievals (spec 6.4) and the Expedited capacity model
(spec 6.5).

The undocumented numbers are settings [R]: a Standard retrieval's rate is its
bytes spread over `spread_hours` (4 h, the historical model); the free tier is
`free_tier_bytes_per_month` prorated per day of the current month. Checks read
committed state; two initiations racing each other may both pass, as a
"within a few minutes" policy allows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import timedelta

from openglacier.domain.context import Deps
from openglacier.errors import InsufficientCapacityException, PolicyEnforcedException
from openglacier.ports import MetadataTx
from openglacier.records import Job, JobAction, Vault

GIB = 1 << 30
POLICY_ENFORCED = "InitiateJob request denied by current data retrieval policy."
CAPACITY_WINDOW = timedelta(minutes=5)
RETRIEVALS_PER_UNIT = 3  # Expedited retrievals per unit per 5 minutes (spec 2.32)
CAPACITY_MODES = ("unlimited", "strict")


@dataclass(frozen=True)
class RetrievalLimits:
    free_tier_bytes_per_month: int = 10 * GIB
    spread_hours: float = 4.0
    expedited_capacity: str = "unlimited"  # "strict": only provisioned units serve Expedited


def enforce_limits(
    deps: Deps, tx: MetadataTx, limits: RetrievalLimits, vault: Vault, job: Job
) -> None:
    if job.action is JobAction.INVENTORY:
        return  # never limited (spec 6.4 [R])
    if job.tier == "Standard" and job.action is JobAction.ARCHIVE:
        _retrieval_policy(deps, tx, limits, vault, job)
    if job.tier == "Expedited":
        _capacity(deps, tx, limits, vault)


def _retrieval_policy(
    deps: Deps, tx: MetadataTx, limits: RetrievalLimits, vault: Vault, job: Job
) -> None:
    rule = tx.get_data_retrieval_rule(vault.account_id, vault.region)
    if rule is None or rule.strategy == "None":
        return
    assert job.range_start is not None
    assert job.range_end is not None
    size = job.range_end - job.range_start + 1
    if rule.strategy == "BytesPerHour":
        running = tx.retrieval_bytes(
            vault.account_id, vault.region, "Standard", in_progress=True, since=None
        )
        rate = (running + size) / limits.spread_hours
        if rule.bytes_per_hour is not None and rate > rule.bytes_per_hour:
            raise PolicyEnforcedException(POLICY_ENFORCED)
        return
    now = deps.clock.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    used = tx.retrieval_bytes(
        vault.account_id, vault.region, "Standard", in_progress=False, since=day_start
    )
    if used + size > limits.free_tier_bytes_per_month / days:
        raise PolicyEnforcedException(POLICY_ENFORCED)


def _capacity(deps: Deps, tx: MetadataTx, limits: RetrievalLimits, vault: Vault) -> None:
    if limits.expedited_capacity != "strict":
        return
    now = deps.clock.now()
    units = tx.count_active_capacity(vault.account_id, vault.region, now)
    recent = tx.count_jobs_since(vault.account_id, vault.region, "Expedited", now - CAPACITY_WINDOW)
    if recent >= RETRIEVALS_PER_UNIT * units:
        raise InsufficientCapacityException(
            "Insufficient capacity to process this Expedited request: "
            f"{units} provisioned capacity unit(s) allow {RETRIEVALS_PER_UNIT * units} Expedited "
            "retrievals per 5 minutes."
        )

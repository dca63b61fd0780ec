"""What GetJobOutput reads for a succeeded archive-retrieval job, kept in memory.

A succeeded job's row and its pinned segments never change until the job
expires, so a download in many ranged requests (the transfer client's
parallel download, a resumed one) need not read them again for every range:
that was two of the four statements each ranged request ran. What can change
is still read per request: the vault (deleted, or recreated with another id),
the job's expiry (by the clock) and open damage on the archive, so damage
found after the plan was cached is still refused before any byte is sent.

A kept plan is read again after `TTL` seconds: `blobs rewrite` switches an
archive's blobs to new keys and deletes the old ones after its grace period
(`--delete-after`, default one hour), so a plan must not outlive the switch by
more than a few seconds.

Bounded by bytes, not entries: a plan holds 32 bytes of leaf hashes per MiB
of archive, so a plan over `PER_PLAN` (a 32 GiB archive) is not kept, and the
least recently used plans go once the total passes `BUDGET`. Used from the
event loop's thread only, so no lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from openglacier.records import Job, Segment

BUDGET = 64 << 20  # bytes of leaf hashes over every kept plan
PER_PLAN = 1 << 20  # a larger plan is read per request, never kept
OVERHEAD = 512  # bytes a plan costs beyond its leaf hashes (the rows' other fields)
TTL = 10.0  # seconds a plan is used before it is read again


class OutputPlans:
    def __init__(
        self,
        budget: int = BUDGET,
        per_plan: int = PER_PLAN,
        ttl: float = TTL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.per_plan = per_plan
        self.ttl = ttl
        self.now = now
        self.used = 0
        # job id -> (job, its segments, cost in bytes, when kept)
        self._plans: OrderedDict[str, tuple[Job, tuple[Segment, ...], int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, job_id: str) -> tuple[Job, tuple[Segment, ...]] | None:
        kept = self._plans.get(job_id)
        if kept is None:
            return None
        if self.now() - kept[3] > self.ttl:
            self.drop(job_id)
            return None
        self._plans.move_to_end(job_id)
        return kept[0], kept[1]

    def put(self, job: Job, segments: Sequence[Segment]) -> None:
        cost = OVERHEAD + sum(len(s.leaf_hashes) + OVERHEAD for s in segments)
        if cost > self.per_plan or job.job_id in self._plans:
            return
        self._plans[job.job_id] = (job, tuple(segments), cost, self.now())
        self.used += cost
        while self.used > self.budget:
            _, (_, _, freed, _) = self._plans.popitem(last=False)
            self.used -= freed

    def drop(self, job_id: str) -> None:
        kept = self._plans.pop(job_id, None)
        if kept is not None:
            self.used -= kept[2]

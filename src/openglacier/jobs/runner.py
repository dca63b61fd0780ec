"""The job runner: claims due jobs under a lease and completes them (spec 4).

Any number of runners may work on one metadata store: inside API processes
(`--job-workers`) and as `openglacier worker` processes. A runner claims a
due job at a time (PostgreSQL: FOR UPDATE SKIP LOCKED), renews its lease while
a long job runs, and finishes each job only while it still holds the lease. A
runner that dies leaves its lease to expire; another runner then claims the job
again. Time comes from the injected clock (design principle 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from openglacier.domain.context import Deps
from openglacier.domain.models import Job
from openglacier.jobs.executors import JobExecutor, LeaseLost
from openglacier.metrics import JOB_LEASES_LOST
from openglacier.ports import MetadataTx

log = logging.getLogger("openglacier.jobs")


def new_owner_id(role: str) -> str:
    """Unique per runner: host, pid and a random part (pids are reused)."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class JobRunner:
    deps: Deps
    executor: JobExecutor
    lease: timedelta = timedelta(seconds=60)
    owner: str = field(default_factory=lambda: new_owner_id("runner"))
    _wake: asyncio.Event | None = None

    async def run_due(self) -> int:
        """Complete every job due now; the number this runner completed.

        One job is claimed at a time: only the running job's lease is renewed,
        so a claimed job waiting behind a slow one would lose its lease to
        another runner, which would then run it a second time.
        """
        done = 0
        while True:
            now = self.deps.clock.now()
            claimed = await self.deps.in_tx(
                partial(_claim_due, now=now, owner=self.owner, lease=self.lease, limit=1)
            )
            if not claimed:
                return done
            done += await self.run(claimed[0])

    async def run(self, job: Job) -> bool:
        """Execute one claimed job, renewing the lease meanwhile."""
        renewal = asyncio.create_task(self._renew(job.job_id))
        try:
            await self.executor.execute(job, self.owner)
            return True
        except LeaseLost:
            JOB_LEASES_LOST.inc()
            log.warning("job %s: lease lost, another runner finished it", job.job_id)
            return False
        except Exception:
            # Left in progress: the lease expires and a runner retries it.
            log.exception("job %s failed to run; it will be retried", job.job_id)
            return False
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal

    async def _renew(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            until = self.deps.clock.now() + self.lease
            renew = partial(_renew_lease, job_id=job_id, owner=self.owner, until=until)
            if not await self.deps.in_tx(renew):
                return

    async def drain(self, timeout: float = 60.0) -> int:
        """Admin hook: return once no job due now is left in progress, running
        what this runner can claim and waiting for jobs other runners hold."""
        deadline = asyncio.get_running_loop().time() + timeout
        done = 0
        while True:
            done += await self.run_due()
            if not await self.deps.in_tx(partial(_count_due, now=self.deps.clock.now())):
                return done
            if asyncio.get_running_loop().time() > deadline:
                return done
            await asyncio.sleep(0.01)  # another runner holds the rest

    async def complete_now(self, job_id: str) -> bool:
        """Admin hook: run one in-progress job now, due or not."""
        now = self.deps.clock.now()
        job = await self.deps.in_tx(
            lambda tx: tx.claim_job(job_id, now, self.owner, now + self.lease)
        )
        return job is not None and await self.run(job)

    async def fail_now(self, job_id: str, reason: str) -> bool:
        """Admin hook: fail one in-progress job now, whoever holds it."""
        job = await self.deps.in_tx(lambda tx: tx.get_job(job_id))
        if job is None or job.completed:
            return False
        try:
            await self.executor.fail(job, reason, None)
        except LeaseLost:
            return False
        return True

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def loop(self, poll_seconds: float) -> None:
        self._wake = asyncio.Event()
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("job runner pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_seconds)
            self._wake.clear()


def _claim_due(
    tx: MetadataTx, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[Job]:
    return tx.claim_due_jobs(now, owner, now + lease, limit)


def _renew_lease(tx: MetadataTx, *, job_id: str, owner: str, until: datetime) -> bool:
    return tx.renew_lease(job_id, owner, until)


def _count_due(tx: MetadataTx, *, now: datetime) -> int:
    return tx.count_due_jobs(now)

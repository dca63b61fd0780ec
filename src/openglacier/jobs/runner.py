"""The job runner: claims due jobs under a lease and completes them (spec 4).

Any number of runners may work on one metadata store: inside API processes
(`--job-workers`, each on its own thread and event loop: see `in_own_thread`)
and as `openglacier worker` processes. A runner claims due archive retrievals
in batches (jobs/batch.py) and other jobs one at a time (PostgreSQL: FOR
UPDATE SKIP LOCKED), renews their leases while they run, and finishes each job
only while it still holds the lease. A runner that dies leaves its leases to
expire; another runner then claims the jobs again. Time comes from the
injected clock (design principle 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import anyio.from_thread

from openglacier.domain.context import Deps
from openglacier.jobs.batch import BATCH, run_archive_batch
from openglacier.jobs.executors import JobExecutor, LeaseLost
from openglacier.metrics import JOB_LEASES_LOST
from openglacier.ports import MetadataTx
from openglacier.records import Job, JobAction

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
    batch: int = BATCH
    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def run_due(self) -> int:
        """Complete every job due now; the number this runner completed.

        Each pass claims up to `batch` due archive retrievals and at most one
        inventory or select job, in one transaction. The retrievals are
        completed in a batch (jobs/batch.py) while the other job runs beside
        them, each under its own renewed lease: an inventory or select job may
        run for long, and one claimed only to wait behind others could lose
        its lease to another runner, which would run it again.
        """
        done = 0
        while True:
            archives, other = await self._claim()
            if not archives and not other:
                return done
            runs: list[Awaitable[int]] = []
            if archives:
                runs.append(self.run_batch(archives))
            if other:
                runs.append(self._run_counted(other[0]))
            done += sum(await asyncio.gather(*runs))

    async def _claim(self) -> tuple[list[Job], list[Job]]:
        now = self.deps.clock.now()
        claim = partial(_claim_due, now=now, owner=self.owner, lease=self.lease, limit=self.batch)
        return await self.deps.in_tx(claim)

    async def _run_counted(self, job: Job) -> int:
        return 1 if await self.run(job) else 0

    async def run(self, job: Job) -> bool:
        """Execute one claimed job, renewing the lease meanwhile."""
        if job.action is JobAction.ARCHIVE:
            return await self.run_batch([job]) == 1
        renewal = asyncio.create_task(self._renew([job.job_id]))
        try:
            await self.executor.execute(job, self.owner)
            return True
        except LeaseLost:
            _lease_lost(job.job_id)
            return False
        except Exception:
            # Left in progress: the lease expires and a runner retries it.
            log.exception("job %s failed to run; it will be retried", job.job_id)
            return False
        finally:
            await _stop(renewal)

    async def run_batch(self, jobs: list[Job]) -> int:
        """Complete claimed archive retrievals together; how many completed."""
        renewal = asyncio.create_task(self._renew([job.job_id for job in jobs]))
        batch = partial(
            run_archive_batch, self.executor, jobs, self.owner, anyio.from_thread.check_cancelled
        )
        try:
            outcome = await self.deps.blocking(batch)
        except Exception:
            # Left in progress: the leases expire and a runner retries them.
            log.exception("%d archive retrievals failed to run; they will be retried", len(jobs))
            return 0
        finally:
            await _stop(renewal)
        for job_id in outcome.lost:
            _lease_lost(job_id)
        return len(outcome.completed)

    async def _renew(self, job_ids: list[str]) -> None:
        held = list(job_ids)
        while held:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            until = self.deps.clock.now() + self.lease
            renew = partial(_renew_leases, job_ids=held, owner=self.owner, until=until)
            renewed = await self.deps.in_tx(renew)
            held = [job_id for job_id in held if job_id in renewed]

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
        """From any thread (InitiateJob's handler runs on the request loop)."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the runner's loop has closed
                self._loop.call_soon_threadsafe(self._wake.set)

    async def loop(self, poll_seconds: float) -> None:
        self._wake, self._loop = asyncio.Event(), asyncio.get_running_loop()
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("job runner pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_seconds)
            self._wake.clear()


def _lease_lost(job_id: str) -> None:
    JOB_LEASES_LOST.inc()
    log.warning("job %s: lease lost, another runner finished it", job_id)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _claim_due(
    tx: MetadataTx, *, now: datetime, owner: str, lease: timedelta, limit: int
) -> tuple[list[Job], list[Job]]:
    """Due archive retrievals, up to `limit`, and at most one other job."""
    archives = tx.claim_due_jobs(now, owner, now + lease, limit, archive=True)
    return archives, tx.claim_due_jobs(now, owner, now + lease, 1, archive=False)


def _renew_leases(tx: MetadataTx, *, job_ids: list[str], owner: str, until: datetime) -> set[str]:
    return tx.renew_leases(job_ids, owner, until)


def _count_due(tx: MetadataTx, *, now: datetime) -> int:
    return tx.count_due_jobs(now)

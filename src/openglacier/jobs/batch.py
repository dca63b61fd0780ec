"""Archive retrievals completed in batches (docs/performance.md, "Job bursts").

A burst of InitiateJob calls used to cost each job its own claim, its own blob
check and its own completion transaction, a dozen event-loop turns and three
fsynced commits each: about 100 jobs/s end to end on SQLite, and a runner that
starved when clients polled for output meanwhile. Here a runner claims up to
`BATCH` due archive retrievals in one transaction, checks their blobs on one
worker thread, and records the outcomes in few transactions:

- a group is committed once `GROUP_SECONDS` of checking have passed (a large
  archive verifies for a while; the small ones checked before it should not
  wait for it), and at the end;
- every job is completed inside its own savepoint, so a lost lease, a deleted
  archive or any error undoes only that job; its notifications are queued in
  the same savepoint (spec 4.7), so no job is completed without them or twice;
- what the jobs share is read once per group: each archive's row (locked,
  in archive-id order, the same in every batch, so concurrent batches on
  PostgreSQL cannot deadlock on archives they share), segments and open
  damage, and each vault with its notification configuration;
- a crash (SIGKILL) before a group's commit leaves its jobs in progress with a
  lease that expires; another runner then claims and completes them again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from openglacier.jobs.executors import ArchiveFacts, JobExecutor, LeaseLost, VaultFacts
from openglacier.records import Job

log = logging.getLogger("openglacier.jobs")

BATCH = 64  # archive retrievals claimed per transaction
GROUP_SECONDS = 0.05  # checking time after which the outcomes so far are committed


@dataclass
class BatchOutcome:
    completed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # another runner holds or finished it
    failed: list[str] = field(default_factory=list)  # an error: left for a retry


def run_archive_batch(
    executor: JobExecutor, jobs: list[Job], owner: str, cancelled: Callable[[], None]
) -> BatchOutcome:
    """Check and complete claimed archive retrievals; on a worker thread.

    `cancelled` raises when the runner is stopping: outcomes not committed yet
    are dropped and their jobs are retried after their leases expire.
    """
    deps = executor.deps
    with deps.store.transaction(readonly=True) as tx:
        segments = {a: tx.get_segments(a) for a in {_archive_id(job) for job in jobs}}
    outcome = BatchOutcome()
    pending: list[tuple[Job, str | None]] = []
    started = time.monotonic()
    for job in jobs:
        cancelled()
        try:
            problem = executor.archive_problem(job, segments[_archive_id(job)], cancelled)
        except Exception:
            log.exception("job %s failed to run; it will be retried", job.job_id)
            outcome.failed.append(job.job_id)
            continue
        pending.append((job, problem))
        if time.monotonic() - started >= GROUP_SECONDS:
            _complete(executor, pending, owner, outcome)
            pending, started = [], time.monotonic()
    if pending:
        _complete(executor, pending, owner, outcome)
    return outcome


def _complete(
    executor: JobExecutor, pending: list[tuple[Job, str | None]], owner: str, outcome: BatchOutcome
) -> None:
    """One transaction for the group, one savepoint per job.

    What the jobs share is read once, before their savepoints: each archive
    (its row locked, its segments and open damage) and each vault. Completing
    a job then costs four statements (savepoint, fenced finish, pins,
    release) and one per notification, instead of ten and its notifications:
    on SQLite every statement waits for the GIL, which request handling holds
    most of the time under load (docs/performance.md, "Job completions: shared
    reads and one claim")."""
    done: list[str] = []
    lost: list[str] = []
    failed: list[str] = []
    deps = executor.deps
    with deps.store.transaction() as tx:
        # Many jobs share archives, so every group locks its archive rows in
        # archive-id order: batches of two runners that took them in claim
        # order deadlocked on PostgreSQL.
        archives = {
            a: ArchiveFacts.read(tx, a) for a in sorted({_archive_id(j) for j, _ in pending})
        }
        vaults = {v: VaultFacts.read(deps, tx, v) for v in sorted({j.vault_id for j, _ in pending})}
        for job, problem in pending:
            try:
                with tx.savepoint():
                    executor.complete_archive(
                        tx,
                        job=job,
                        owner=owner,
                        problem=problem,
                        archive=archives[_archive_id(job)],
                        vault=vaults[job.vault_id],
                    )
            except LeaseLost:
                lost.append(job.job_id)
            except Exception:
                log.exception("job %s failed to run; it will be retried", job.job_id)
                failed.append(job.job_id)
            else:
                done.append(job.job_id)
    # Only once committed: a failed commit raises, and the jobs stay in progress.
    outcome.completed += done
    outcome.lost += lost
    outcome.failed += failed


def _archive_id(job: Job) -> str:
    assert job.archive_id is not None  # archive retrievals always name one
    return job.archive_id

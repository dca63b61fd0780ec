"""Concurrent batches on PostgreSQL never deadlock on the archives they pin.

Completing an archive retrieval locks its archive row (FOR UPDATE: a concurrent
DeleteArchive waits until the pins are committed). Many jobs retrieve the same
archives, and a batch completes up to 64 jobs in one transaction, so two
runners' batches that locked the same archives in different orders deadlocked:
PostgreSQL aborted one job of the pair, which was logged as "failed to run" and
retried only after its lease lapsed. Batches now lock archives in archive-id
order (jobs/batch.py), which no cycle can form under.

The runner also renews the leases of a running batch, in its own transaction,
every third of the lease. That UPDATE locked the batch's job rows in job-id
order while the batch, completing them in archive-id order, held some and
wanted others: the second deadlock. Renewal now skips rows another
transaction holds (a job being completed has no lease left to renew).

The first test makes the bad interleaving certain: a third session holds archive A,
batch 2 (A then B) queues for A, then batch 1, given its jobs as B then A,
starts. Were B locked first, batch 2 would be granted A (the first in the queue)
and wait for B while batch 1 waits for A.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from openglacier.clock import PROFILES, ManualClock
from openglacier.domain.context import Deps
from openglacier.jobs.batch import BatchOutcome, run_archive_batch
from openglacier.jobs.executors import JobExecutor
from openglacier.records import Archive, Job, JobStatus, Vault
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore
from support.job_rows import LEASE, add_archive, add_job, get
from support.workers import poll

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_deps(pg_store: SqlMetadataStore, tmp_path: Path) -> Iterator[Deps]:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    yield Deps(store=pg_store, blobs=blobs, clock=ManualClock(), timing=PROFILES["instant"])
    blobs.close()


def new_vault(deps: Deps, name: str) -> Vault:
    with deps.store.transaction() as tx:
        return tx.create_vault("111122223333", "us-east-1", name, deps.clock.now())


def leased(deps: Deps, archive: Archive, vault: Vault, owner: str) -> Job:
    job = add_job(deps, vault, archive)
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        claimed = tx.claim_job(job.job_id, now, owner, now + LEASE)
    assert claimed is not None
    return claimed


def waiters(store: SqlMetadataStore) -> int:
    """Sessions of this database waiting for a lock."""
    with store.engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(DISTINCT l.pid) FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database()"
                )
            )
            or 0
        )


def test_two_batches_pinning_the_same_archives_both_complete(
    pg_deps: Deps, pg_store: SqlMetadataStore
) -> None:
    deps = pg_deps
    vault = new_vault(deps, "locks")
    a, b = sorted(
        (add_archive(deps, vault, bytes([n]) * 1000) for n in range(2)),
        key=lambda archive: archive.archive_id,
    )
    first = [leased(deps, b, vault, "one"), leased(deps, a, vault, "one")]
    second = [leased(deps, a, vault, "two"), leased(deps, b, vault, "two")]
    executor = JobExecutor(deps)
    outcomes: dict[str, BatchOutcome] = {}

    def run(owner: str, jobs: list[Job]) -> None:
        outcomes[owner] = run_archive_batch(executor, jobs, owner, lambda: None)

    threads = {
        owner: threading.Thread(target=run, args=(owner, jobs))
        for owner, jobs in (("two", second), ("one", first))
    }
    with pg_store.engine.connect() as holder:
        holding = holder.begin()
        holder.execute(
            text("SELECT 1 FROM archives WHERE archive_id = :id FOR UPDATE"),
            {"id": a.archive_id},
        )
        threads["two"].start()
        poll(lambda: waiters(pg_store) == 1, "batch 2 to queue for archive A")
        threads["one"].start()
        poll(lambda: waiters(pg_store) == 2, "batch 1 to queue for archive A")
        holding.rollback()
    for thread in threads.values():
        thread.join(timeout=60)
        assert not thread.is_alive()
    for owner, jobs in (("one", first), ("two", second)):
        assert outcomes[owner].failed == []
        assert sorted(outcomes[owner].completed) == sorted(job.job_id for job in jobs)
    assert {get(deps, job.job_id).status for job in first + second} == {JobStatus.SUCCEEDED}


def test_lease_renewal_skips_the_jobs_a_batch_is_completing(
    pg_deps: Deps, pg_store: SqlMetadataStore
) -> None:
    deps = pg_deps
    vault = new_vault(deps, "renewal")
    archive = add_archive(deps, vault, b"r" * 1000)
    low, high = sorted(
        (leased(deps, archive, vault, "one") for _ in range(2)), key=lambda job: job.job_id
    )
    renewed: dict[str, set[str]] = {}
    until = deps.clock.now() + 2 * LEASE

    def renew() -> None:
        with deps.store.transaction() as tx:
            renewed["ids"] = tx.renew_leases([low.job_id, high.job_id], "one", until)

    with pg_store.engine.connect() as batch:
        completing = batch.begin()
        # The batch has completed `high` (its archive sorts first) and will
        # complete `low` next. A renewal that waited for `high` while holding
        # `low` (job-id order) deadlocked with it.
        batch.execute(
            text("UPDATE jobs SET status = 'Succeeded' WHERE job_id = :id"), {"id": high.job_id}
        )
        renewal = threading.Thread(target=renew)
        renewal.start()
        renewal.join(timeout=10)
        assert not renewal.is_alive(), "lease renewal waited for a row the batch holds"
        batch.execute(
            text("UPDATE jobs SET status = 'Succeeded' WHERE job_id = :id"), {"id": low.job_id}
        )
        completing.commit()
    assert renewed["ids"] == {low.job_id}
    assert get(deps, low.job_id).lease_until == until

"""Archive retrievals claimed and completed in batches (jobs/batch.py), on both
metadata engines (SQLite and PostgreSQL) over a real filesystem blob store.

One batch completes each job on its own terms: a good archive succeeds with its
blobs pinned, a deleted one fails, a damaged one fails with a damage record, and
a job whose lease another runner took is left to that runner, with nothing of it
written. Notifications are queued for exactly the jobs completed.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import datetime

import anyio
import pytest
from sqlalchemy import event

from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.jobs import batch
from openglacier.jobs.executors import ARCHIVE_DELETED, JobExecutor
from openglacier.jobs.runner import JobRunner
from openglacier.ports import MetadataTx
from openglacier.records import (
    Job,
    JobStatus,
    Vault,
)
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.treehash import MIB
from support.blobfiles import blob_file, flip_bit
from support.job_rows import LEASE, add_archive, add_job, get


@pytest.fixture
def vault(deps: Deps) -> Vault:
    with deps.store.transaction() as tx:
        return tx.create_vault("111122223333", "us-east-1", "batches", deps.clock.now())


def runner(deps: Deps, owner: str = "runner:test") -> JobRunner:
    return JobRunner(deps, JobExecutor(deps), lease=LEASE, owner=owner)


def notified(deps: Deps) -> list[str]:
    with deps.store.transaction(readonly=True) as tx:
        rows = tx.list_notifications(None, 10_000)
    return [json.loads(row.message)["JobId"] for row in rows]


def test_claims_archive_retrievals_apart_from_other_jobs(deps: Deps, vault: Vault) -> None:
    archive = add_archive(deps, vault, b"x" * 100)
    jobs = [add_job(deps, vault, archive) for _ in range(3)]
    inventory = add_job(deps, vault, None)
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        claimed = tx.claim_due_jobs(now, "a", now + LEASE, 10, archive=True)
        assert [job.job_id for job in claimed] == sorted(job.job_id for job in jobs)
        assert all(job.lease_owner == "a" and job.attempts == 1 for job in claimed)
        others = tx.claim_due_jobs(now, "a", now + LEASE, 10, archive=False)
        assert [job.job_id for job in others] == [inventory.job_id]
        # Leased now: nobody claims them again before the lease expires.
        assert tx.claim_due_jobs(now, "b", now + LEASE, 10) == []
        later = now + LEASE
        again = tx.claim_due_jobs(later, "b", later + LEASE, 2)
    assert len(again) == 2
    assert all(job.lease_owner == "b" and job.attempts == 2 for job in again)


def test_renew_leases_renews_only_what_the_owner_still_holds(deps: Deps, vault: Vault) -> None:
    archive = add_archive(deps, vault, b"y" * 10)
    mine, taken, done = (add_job(deps, vault, archive) for _ in range(3))
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        tx.claim_due_jobs(now, "a", now + LEASE, 10)
        assert tx.claim_job(taken.job_id, now + LEASE, "b", now + 2 * LEASE) is not None
        finished = replace(get_in(tx, done.job_id), status=JobStatus.SUCCEEDED, completed_at=now)
        assert tx.finish_job(finished, "a")
        renewed = tx.renew_leases([mine.job_id, taken.job_id, done.job_id], "a", now + 3 * LEASE)
    assert renewed == {mine.job_id}
    assert get(deps, mine.job_id).lease_until == now + 3 * LEASE
    assert get(deps, taken.job_id).lease_owner == "b"


def get_in(tx: MetadataTx, job_id: str) -> Job:
    job = tx.get_job(job_id)
    assert job is not None
    return job


def undone(tx: MetadataTx, now: datetime) -> None:
    with tx.savepoint():
        tx.create_vault("111122223333", "us-east-1", "undone", now)
        raise RuntimeError("undo this block")


def test_a_savepoint_undoes_only_its_own_block(deps: Deps) -> None:
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        tx.create_vault("111122223333", "us-east-1", "kept", now)
        with pytest.raises(RuntimeError, match="undo"):
            undone(tx, now)
        with tx.savepoint():
            tx.create_vault("111122223333", "us-east-1", "also-kept", now)
    with deps.store.transaction(readonly=True) as tx:
        names = [v.name for v in tx.list_vaults("111122223333", "us-east-1", None, 10)]
    assert names == ["also-kept", "kept"]


def test_one_batch_completes_each_job_on_its_own_terms(deps: Deps, vault: Vault) -> None:
    rng = random.Random(5)
    good = [add_archive(deps, vault, rng.randbytes(size)) for size in (1, MIB + 7, 3000)]
    deleted, damaged, stolen = (add_archive(deps, vault, rng.randbytes(2 * MIB)) for _ in range(3))
    jobs = {name: add_job(deps, vault, a) for name, a in zip("abc", good, strict=True)}
    jobs |= {n: add_job(deps, vault, a) for n, a in [("d", deleted), ("x", damaged), ("s", stolen)]}
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        claimed = tx.claim_due_jobs(now, "runner:test", now + LEASE, 64, archive=True)
    assert len(claimed) == 6
    # Meanwhile: an archive is deleted, a blob rots, and the lease of one job
    # passes to another runner (ours was stalled past its expiry).
    with deps.store.transaction() as tx:
        tx.remove_archive(
            deleted.archive_id, tx.record_write(vault.id, -1, -deleted.size, now), now
        )
        segment = tx.get_segments(damaged.archive_id)[0]
        assert tx.claim_job(jobs["s"].job_id, now + LEASE, "thief", now + 2 * LEASE) is not None
    assert isinstance(deps.blobs, FilesystemBlobStore)
    flip_bit(blob_file(deps.blobs.root, segment.blob_key), MIB + 5)

    assert anyio.run(runner(deps).run_batch, claimed) == 5

    for name in "abc":
        job = get(deps, jobs[name].job_id)
        assert job.status is JobStatus.SUCCEEDED, job
        assert job.output_size == job.archive_size
        with deps.store.transaction(readonly=True) as tx:
            pinned = tx.get_job_segments(job.job_id, job.archive_id or "")
        assert [s.size for s in pinned] == [job.archive_size]
    assert get(deps, jobs["d"].job_id).status_message == ARCHIVE_DELETED
    rotten = get(deps, jobs["x"].job_id)
    assert (rotten.status, rotten.status_message) == (JobStatus.FAILED, damage.DAMAGED_MESSAGE)
    with deps.store.transaction(readonly=True) as tx:
        record = tx.open_damage(damaged.archive_id)
    assert record is not None
    assert record.blob_key == segment.blob_key
    taken = get(deps, jobs["s"].job_id)
    assert (taken.status, taken.lease_owner) == (JobStatus.IN_PROGRESS, "thief")
    expected = {jobs[name].job_id for name in "abcdx"}
    assert sorted(notified(deps)) == sorted(expected)


def test_a_burst_runs_in_few_transactions(
    deps: Deps, vault: Vault, metadata_store: SqlMetadataStore
) -> None:
    """150 archive retrievals and two inventory jobs: every one completes, in a
    handful of commits instead of two or three per job."""
    archive = add_archive(deps, vault, b"z" * 5000)
    jobs = [add_job(deps, vault, archive) for _ in range(150)]
    jobs += [add_job(deps, vault, None) for _ in range(2)]
    commits: list[int] = []

    def count(_conn: object) -> None:
        commits.append(1)

    event.listen(metadata_store.engine, "commit", count)
    done = anyio.run(runner(deps).run_due)
    event.remove(metadata_store.engine, "commit", count)
    assert done == 152
    assert {get(deps, job.job_id).status for job in jobs} == {JobStatus.SUCCEEDED}
    # Per batch of 64: a claim, a read of the segments and a completion; per
    # inventory job a claim, its reads and its finish; the empty claims at the
    # end. One by one, it was two write transactions per job and a read.
    assert len(commits) <= 20, len(commits)
    assert sorted(notified(deps)) == sorted(job.job_id for job in jobs[:150])


def test_groups_commit_as_they_go(
    deps: Deps, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a group closing after every job (a batch of large archives), each
    job is committed on its own, and all complete."""
    monkeypatch.setattr(batch, "GROUP_SECONDS", 0.0)
    archive = add_archive(deps, vault, b"w" * 100)
    jobs = [add_job(deps, vault, archive) for _ in range(5)]
    assert anyio.run(runner(deps).run_due) == 5
    assert {get(deps, job.job_id).status for job in jobs} == {JobStatus.SUCCEEDED}


def test_damage_found_by_one_job_fails_the_next_job_of_that_archive(
    deps: Deps, vault: Vault
) -> None:
    """The group reads each archive's open damage once; a job that finds damage
    updates what the jobs after it see, so a second job of the same archive,
    whose own range (the first MiB) reads clean, is failed too, not served."""
    archive = add_archive(deps, vault, random.Random(6).randbytes(2 * MIB))
    whole = add_job(deps, vault, archive)
    first_mib = add_job(deps, vault, archive, range_end=MIB - 1)
    with deps.store.transaction(readonly=True) as tx:
        segment = tx.get_segments(archive.archive_id)[0]
    assert isinstance(deps.blobs, FilesystemBlobStore)
    flip_bit(blob_file(deps.blobs.root, segment.blob_key), MIB + 5)
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        claimed = tx.claim_due_jobs(now, "runner:test", now + LEASE, 64, archive=True)
    by_id = {job.job_id: job for job in claimed}
    ordered = [by_id[whole.job_id], by_id[first_mib.job_id]]

    assert anyio.run(runner(deps).run_batch, ordered) == 2

    for job in (whole, first_mib):
        done = get(deps, job.job_id)
        assert (done.status, done.status_message) == (JobStatus.FAILED, damage.DAMAGED_MESSAGE)
    with deps.store.transaction(readonly=True) as tx:
        assert tx.open_damage(archive.archive_id) is not None
        assert tx.get_job_segments(first_mib.job_id, archive.archive_id) == []


def test_completing_a_group_costs_four_statements_per_job(
    deps: Deps, vault: Vault, metadata_store: SqlMetadataStore
) -> None:
    """The archive, its segments, its damage and the vault are read once per
    group: each further job is its savepoint, its fenced finish, its pins and
    the savepoint's release (plus its notification)."""
    archive = add_archive(deps, vault, b"q" * 3000)
    jobs = [add_job(deps, vault, archive) for _ in range(40)]
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        claimed = tx.claim_due_jobs(now, "runner:test", now + LEASE, 64, archive=True)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(metadata_store.engine, "before_cursor_execute", count)
    assert anyio.run(runner(deps).run_batch, claimed) == 40
    event.remove(metadata_store.engine, "before_cursor_execute", count)
    assert {get(deps, job.job_id).status for job in jobs} == {JobStatus.SUCCEEDED}
    # 5 per job (with the job's own notification), and a few per group and
    # batch; ten per job before the reads were shared.
    assert len(statements) <= 5 * len(jobs) + 20, len(statements)

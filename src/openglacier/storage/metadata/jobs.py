"""Retrieval jobs, their pinned segments and inventory listings (spec 2.26-2.29, 4).

Runners claim due jobs under a lease. On PostgreSQL the claim query skips rows
another runner has locked (FOR UPDATE SKIP LOCKED), so concurrent runners never
wait on, or take, each other's jobs; SQLite transactions are serialised already.
A completion names the lease holder and is refused otherwise (fencing): a runner
that lost its lease (paused, partitioned) can never complete a job twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from openglacier.records import (
    InventoryItem,
    InventoryParams,
    Job,
    JobAction,
    JobStatus,
    Segment,
)
from openglacier.storage.metadata.base import TxBase, after_position
from openglacier.storage.metadata.schema import archives, job_segments, jobs, vaults

IN_PROGRESS = JobStatus.IN_PROGRESS.value
_INVENTORY_COLUMNS = {
    "inventory_format": "format",
    "inventory_start": "start_date",
    "inventory_end": "end_date",
    "inventory_limit": "limit",
    "inventory_marker": "marker",
}


def _job(values: dict[str, Any]) -> Job:
    """A job from a fresh dict of its row (consumed)."""
    inventory = {field: values.pop(column) for column, field in _INVENTORY_COLUMNS.items()}
    values["inventory"] = InventoryParams(**inventory) if inventory["format"] is not None else None
    values["action"] = JobAction(values["action"])
    values["status"] = JobStatus(values["status"])
    return Job(**values)


def _job_values(job: Job) -> dict[str, Any]:
    values: dict[str, Any] = {c.name: getattr(job, c.name, None) for c in jobs.c}
    values["action"] = job.action.value
    values["status"] = job.status.value
    for column, field in _INVENTORY_COLUMNS.items():
        values[column] = getattr(job.inventory, field) if job.inventory else None
    return values


def _in_account(account_id: str, region: str) -> Any:
    """Jobs of the account's vaults in the region."""
    vault_ids = select(vaults.c.id).where(
        vaults.c.account_id == account_id, vaults.c.region == region
    )
    return jobs.c.vault_id.in_(vault_ids)


def _lease_free(now: datetime) -> Any:
    return or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= now)


# What finishing a job changes. Built once with bound parameters: compiling the
# UPDATE of every column with literal values (and its cache key) was half of a
# batched archive retrieval's CPU time (docs/performance.md, "Job bursts").
_OUTCOME = (
    "status",
    "status_message",
    "completed_at",
    "output_blob_key",
    "output_size",
    "next_marker",
)
_INSERT = jobs.insert()
_JOB = select(jobs).where(jobs.c.job_id == bindparam("job_id"))
_JOB_FOR_UPDATE = _JOB.with_for_update()
_NO_LEASE = {"lease_owner": None, "lease_until": None}
_FINISH = (
    update(jobs)
    .where(jobs.c.job_id == bindparam("w_job_id"), jobs.c.status == IN_PROGRESS)
    .values({name: bindparam(f"v_{name}") for name in _OUTCOME} | _NO_LEASE)
)
_FINISH_LEASED = _FINISH.where(jobs.c.lease_owner == bindparam("w_owner"))


class JobOps(TxBase):
    def insert_job(self, job: Job) -> None:
        # Values as parameters of one constant statement: `.values(...)` with
        # literals made SQLAlchemy build a cache key of every column's value
        # on each call (30 % of InitiateJob's CPU, docs/performance.md).
        self._run(_INSERT, _job_values(job))

    def get_job(self, job_id: str, *, for_update: bool = False) -> Job | None:
        stmt = _JOB_FOR_UPDATE if for_update else _JOB
        row = self._first(stmt, {"job_id": job_id})
        return None if row is None else _job(row._asdict())

    def list_jobs(
        self,
        vault_id: int,
        after: tuple[datetime, str] | None,
        limit: int,
        *,
        status: JobStatus | None = None,
        completed: bool | None = None,
    ) -> list[Job]:
        stmt = select(jobs).where(jobs.c.vault_id == vault_id)
        if after is not None:
            stmt = stmt.where(after_position(jobs.c.created_at, jobs.c.job_id, after))
        if status is not None:
            stmt = stmt.where(jobs.c.status == status.value)
        if completed is not None:
            stmt = stmt.where(
                (jobs.c.status != IN_PROGRESS) if completed else (jobs.c.status == IN_PROGRESS)
            )
        stmt = stmt.order_by(jobs.c.created_at, jobs.c.job_id).limit(limit)
        return [_job(values) for values in self._dicts(stmt)]

    def retrieval_bytes(
        self, account_id: str, region: str, tier: str, *, in_progress: bool, since: datetime | None
    ) -> int:
        """Bytes of the account's archive retrievals of `tier`: in progress, or
        initiated since `since` (data retrieval policies, spec 6.4)."""
        stmt = select(func.coalesce(func.sum(jobs.c.range_end - jobs.c.range_start + 1), 0)).where(
            _in_account(account_id, region),
            jobs.c.action == JobAction.ARCHIVE.value,
            jobs.c.tier == tier,
        )
        if in_progress:
            stmt = stmt.where(jobs.c.status == IN_PROGRESS)
        if since is not None:
            stmt = stmt.where(jobs.c.created_at >= since)
        return int(self._scalar(stmt) or 0)

    def count_jobs_since(self, account_id: str, region: str, tier: str, since: datetime) -> int:
        """The account's archive and select jobs of `tier` initiated after `since`."""
        stmt = (
            select(func.count())
            .select_from(jobs)
            .where(
                _in_account(account_id, region),
                jobs.c.tier == tier,
                jobs.c.created_at > since,
            )
        )
        return int(self._scalar(stmt) or 0)

    def count_due_jobs(self, now: datetime) -> int:
        """In-progress jobs due at `now`, leased or not (admin drain)."""
        stmt = (
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.status == IN_PROGRESS, jobs.c.due_at <= now)
        )
        return int(self._scalar(stmt) or 0)

    def claim_due_jobs(
        self,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        *,
        archive: bool | None = None,
    ) -> list[Job]:
        """Lease up to `limit` due, unleased (or lease-expired) jobs to `owner`,
        in one UPDATE of the rows the locking SELECT picked."""
        stmt = select(jobs.c.job_id).where(
            jobs.c.status == IN_PROGRESS, jobs.c.due_at <= now, _lease_free(now)
        )
        if archive is not None:
            is_archive = jobs.c.action == JobAction.ARCHIVE.value
            stmt = stmt.where(is_archive if archive else ~is_archive)
        stmt = (
            stmt.order_by(jobs.c.due_at, jobs.c.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [str(r.job_id) for r in self._rows(stmt)]
        if not ids:
            return []
        claimed = {job.job_id: job for job in self._lease(ids, owner, lease_until)}
        return [claimed[job_id] for job_id in ids if job_id in claimed]

    def claim_job(
        self, job_id: str, now: datetime, owner: str, lease_until: datetime
    ) -> Job | None:
        """Lease one in-progress job whatever its due time (admin "complete now")."""
        stmt = (
            select(jobs.c.job_id)
            .where(jobs.c.job_id == job_id, jobs.c.status == IN_PROGRESS, _lease_free(now))
            .with_for_update()
        )
        if self._first(stmt) is None:
            return None
        leased = self._lease([job_id], owner, lease_until)
        return leased[0] if leased else None

    def _lease(self, job_ids: list[str], owner: str, lease_until: datetime) -> list[Job]:
        stmt = (
            update(jobs)
            .where(jobs.c.job_id.in_(job_ids))
            .values(lease_owner=owner, lease_until=lease_until, attempts=jobs.c.attempts + 1)
            .returning(*jobs.c)
        )
        return [_job(row._asdict()) for row in self._rows(stmt)]

    def renew_leases(self, job_ids: Sequence[str], owner: str, lease_until: datetime) -> set[str]:
        if not job_ids:
            return set()
        # SKIP LOCKED: the runner renews while its batch completes the same
        # jobs in another transaction, which locks them in archive-id order.
        # A plain UPDATE locked them in job-id order and waited for the
        # batch's rows while holding rows the batch wanted next: PostgreSQL
        # aborted one side as a deadlock. A locked row is a job being
        # completed (or claimed after our lease lapsed): nothing to renew.
        mine = (
            select(jobs.c.job_id)
            .where(
                jobs.c.job_id.in_(list(job_ids)),
                jobs.c.status == IN_PROGRESS,
                jobs.c.lease_owner == owner,
            )
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(jobs)
            .where(jobs.c.job_id.in_(mine.scalar_subquery()))
            .values(lease_until=lease_until)
            .returning(jobs.c.job_id)
        )
        return {str(row.job_id) for row in self._rows(stmt)}

    def finish_job(self, job: Job, owner: str | None) -> bool:
        """Store `job`'s outcome (Succeeded or Failed: status, message, completion
        time, output) if it is still in progress and, when `owner` is given,
        still leased to it. False: someone else finished it."""
        params = {f"v_{name}": getattr(job, name) for name in _OUTCOME}
        params["v_status"] = job.status.value
        params["w_job_id"] = job.job_id
        if owner is None:
            return self._run(_FINISH, params) == 1
        params["w_owner"] = owner
        return self._run(_FINISH_LEASED, params) == 1

    def put_job_segments(self, job_id: str, segments: Sequence[Segment]) -> None:
        rows = [
            {
                "job_id": job_id,
                "seq": s.seq,
                "offset": s.offset,
                "size": s.size,
                "blob_key": s.blob_key,
                "leaf_hashes": s.leaf_hashes,
            }
            for s in segments
        ]
        if rows:
            self._run(job_segments.insert(), rows)

    def get_job_segments(self, job_id: str, archive_id: str) -> list[Segment]:
        stmt = (
            select(job_segments).where(job_segments.c.job_id == job_id).order_by(job_segments.c.seq)
        )
        return [
            Segment(
                archive_id=archive_id,
                seq=r.seq,
                offset=r.offset,
                size=r.size,
                blob_key=r.blob_key,
                leaf_hashes=r.leaf_hashes,
            )
            for r in self._rows(stmt)
        ]

    def release_job_segments(self, job_id: str, now: datetime) -> None:
        """Drop the job's pins; blob collection deletes blobs nothing else pins."""
        in_job = job_segments.c.job_id == job_id
        self._queue_blobs_from(job_segments.c.blob_key, in_job, now)
        self._run(delete(job_segments).where(in_job))

    def expired_jobs(self, completed_before: datetime, limit: int) -> list[str]:
        stmt = (
            select(jobs.c.job_id)
            .where(jobs.c.completed_at.is_not(None), jobs.c.completed_at <= completed_before)
            .order_by(jobs.c.completed_at)
            .limit(limit)
        )
        return [str(r.job_id) for r in self._rows(stmt)]

    def delete_job(self, job_id: str, now: datetime) -> None:
        """Forget the job; its output blob and pinned segments go to collection."""
        self.release_job_segments(job_id, now)
        self._queue_blobs_from(
            jobs.c.output_blob_key,
            and_(jobs.c.job_id == job_id, jobs.c.output_blob_key.is_not(None)),
            now,
        )
        self._run(delete(jobs).where(jobs.c.job_id == job_id))

    # --- inventory listings -------------------------------------------------
    def inventory_items(
        self,
        vault_id: int,
        seq: int,
        *,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[InventoryItem]:
        """Archives in the inventory taken at `seq`, in (created_at, archive_id)
        order: added at or before it and not removed at or before it (spec 5)."""
        stmt = select(
            archives.c.archive_id,
            archives.c.description,
            archives.c.created_at,
            archives.c.size,
            archives.c.tree_hash,
        ).where(
            archives.c.vault_id == vault_id,
            archives.c.added_seq <= seq,
            or_(archives.c.removed_seq.is_(None), archives.c.removed_seq > seq),
        )
        if start is not None:
            stmt = stmt.where(archives.c.created_at >= start)
        if end is not None:
            stmt = stmt.where(archives.c.created_at < end)
        if after is not None:
            stmt = stmt.where(after_position(archives.c.created_at, archives.c.archive_id, after))
        stmt = stmt.order_by(archives.c.created_at, archives.c.archive_id).limit(limit)
        return [InventoryItem(**r._mapping) for r in self._rows(stmt)]

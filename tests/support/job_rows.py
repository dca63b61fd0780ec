"""Archives and jobs written straight through the metadata layer, for the
job-runner contract tests (no API in between)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from openglacier.domain.context import Deps
from openglacier.ids import new_archive_id, new_blob_key, new_job_id
from openglacier.records import (
    Archive,
    InventoryParams,
    Job,
    JobAction,
    JobStatus,
    Segment,
    Vault,
)
from openglacier.storage.blobs import put_blob
from openglacier.treehash import TreeHasher

TOPIC = "arn:aws:sns:us-east-1:111122223333:batches"
LEASE = timedelta(seconds=60)


def add_archive(deps: Deps, vault: Vault, data: bytes) -> Archive:
    key = new_blob_key()
    put_blob(deps.blobs, key, [data])
    hasher = TreeHasher()
    hasher.update(data)
    now = deps.clock.now()
    archive = Archive(new_archive_id(), vault.id, None, len(data), hasher.hexdigest(), None, now, 1)
    with deps.store.transaction() as tx:
        tx.insert_archive(
            archive, [Segment(archive.archive_id, 0, 0, len(data), key, hasher.leaves())]
        )
    return archive


def add_job(
    deps: Deps, vault: Vault, archive: Archive | None, *, range_end: int | None = None
) -> Job:
    """An archive retrieval of `archive` (its first `range_end + 1` bytes, or
    all of it), or an inventory retrieval when it is None."""
    now = deps.clock.now()
    if archive is None:
        job = Job(new_job_id(), vault.id, JobAction.INVENTORY, JobStatus.IN_PROGRESS, now, now)
        job = replace(job, inventory=InventoryParams("JSON", None, None, None, None))
    else:
        job = Job(
            new_job_id(),
            vault.id,
            JobAction.ARCHIVE,
            JobStatus.IN_PROGRESS,
            now,
            now,
            archive_id=archive.archive_id,
            archive_size=archive.size,
            range_start=0,
            range_end=archive.size - 1 if range_end is None else range_end,
            sns_topic=TOPIC,
        )
    with deps.store.transaction() as tx:
        tx.insert_job(job)
    return job


def get(deps: Deps, job_id: str) -> Job:
    with deps.store.transaction(readonly=True) as tx:
        job = tx.get_job(job_id)
    assert job is not None
    return job

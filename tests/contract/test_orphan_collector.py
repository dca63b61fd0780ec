"""The orphan blob collector (issue 12) on real stores: SQLite and PostgreSQL
metadata, the filesystem blob store, a ManualClock.

An orphan is a committed blob no metadata row names. It goes once older than
the minimum age, never before; a blob named by any row (archive segment,
multipart part, a job's pinned segment or output, the deletion queue) never.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from openglacier.clock import ManualClock
from openglacier.domain.context import DEFAULT_ORPHAN_BLOB_MIN_AGE, Deps
from openglacier.domain.orphans import collect_orphans
from openglacier.ids import new_archive_id, new_blob_key, new_job_id, new_upload_id
from openglacier.jobs.maintenance import ORPHAN_SWEEP_INTERVAL, Maintenance
from openglacier.ports import MetadataTx
from openglacier.records import (
    Archive,
    Job,
    JobAction,
    JobStatus,
    Part,
    Segment,
    Upload,
    UploadState,
)
from openglacier.storage.blobs import put_blob
from openglacier.storage.metadata.store import SqlMetadataStore

AGE = DEFAULT_ORPHAN_BLOB_MIN_AGE
SECOND = timedelta(seconds=1)


def new_blob(deps: Deps) -> str:
    key = new_blob_key()
    put_blob(deps.blobs, key, [b"payload"])
    return key


def collect(deps: Deps, page_size: int = 1000) -> int:
    return anyio.run(collect_orphans, deps, page_size)


def exists(deps: Deps, key: str) -> bool:
    return deps.blobs.stat(key) is not None


# --- one way for each table to name a blob ----------------------------------------


def _segment(archive_id: str, key: str) -> Segment:
    return Segment(archive_id, 0, 0, 7, key, secrets.token_bytes(32))


def _job(tx: MetadataTx, deps: Deps, **fields: object) -> Job:
    vault = tx.create_vault("111122223333", "us-east-1", "v", deps.clock.now())
    now = deps.clock.now()
    job = Job(new_job_id(), vault.id, JobAction.ARCHIVE, JobStatus.SUCCEEDED, now, now)
    return replace(job, **fields)  # type: ignore[arg-type]


def by_archive_segment(tx: MetadataTx, deps: Deps, key: str) -> None:
    vault = tx.create_vault("111122223333", "us-east-1", "v", deps.clock.now())
    archive = Archive(new_archive_id(), vault.id, None, 7, "0" * 64, None, deps.clock.now(), 1)
    tx.insert_archive(archive, [_segment(archive.archive_id, key)])


def by_part(tx: MetadataTx, deps: Deps, key: str) -> None:
    vault = tx.create_vault("111122223333", "us-east-1", "v", deps.clock.now())
    now = deps.clock.now()
    upload = Upload(new_upload_id(), vault.id, None, 1 << 20, now, now, UploadState.ACTIVE)
    tx.insert_upload(upload)
    tx.put_part(Part(upload.upload_id, 0, 7, "0" * 64, "0" * 64, key, now, secrets.token_bytes(32)))


def by_job_segment(tx: MetadataTx, deps: Deps, key: str) -> None:
    job = _job(tx, deps, archive_id=new_archive_id())
    tx.insert_job(job)
    assert job.archive_id is not None
    tx.put_job_segments(job.job_id, [_segment(job.archive_id, key)])


def by_job_output(tx: MetadataTx, deps: Deps, key: str) -> None:
    tx.insert_job(_job(tx, deps, action=JobAction.INVENTORY, output_blob_key=key, output_size=7))


def by_deletion_queue(tx: MetadataTx, deps: Deps, key: str) -> None:
    tx.queue_blob_deletes([key], deps.clock.now())


REFERENCES: list[Callable[[MetadataTx, Deps, str], None]] = [
    by_archive_segment,
    by_part,
    by_job_segment,
    by_job_output,
    by_deletion_queue,
]


# --- tests -------------------------------------------------------------------------


def test_young_orphan_is_kept_old_one_collected(deps: Deps, clock: ManualClock) -> None:
    orphan = new_blob(deps)
    assert collect(deps) == 0
    clock.advance(AGE - SECOND)
    assert collect(deps) == 0
    assert exists(deps, orphan)
    clock.advance(2 * SECOND)
    assert collect(deps) == 1
    assert not exists(deps, orphan)
    assert collect(deps) == 0


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda f: f.__name__)
def test_referenced_blob_is_never_collected(
    deps: Deps, clock: ManualClock, reference: Callable[[MetadataTx, Deps, str], None]
) -> None:
    kept, orphan = new_blob(deps), new_blob(deps)
    with deps.store.transaction() as tx:
        reference(tx, deps, kept)
    clock.advance(10 * AGE)
    assert collect(deps) == 1
    assert exists(deps, kept)
    assert not exists(deps, orphan)


def test_pages_through_many_blobs(deps: Deps, clock: ManualClock) -> None:
    keys = [new_blob(deps) for _ in range(23)]
    referenced = set(keys[::3])
    with deps.store.transaction() as tx:
        tx.queue_blob_deletes(sorted(referenced), clock.now())
    clock.advance(AGE + SECOND)
    assert collect(deps, page_size=4) == len(keys) - len(referenced)
    assert set(deps.blobs.keys()) == referenced


def test_maintenance_sweeps_on_its_first_pass_then_hourly(
    deps: Deps, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = new_blob(deps)
    clock.advance(AGE + SECOND)
    maintenance = Maintenance(deps)
    with caplog.at_level(logging.INFO, logger="openglacier.maintenance"):
        report = anyio.run(maintenance.run_once)
    assert report.orphans_deleted == 1
    assert report.as_dict()["orphans_deleted"] == 1
    assert not exists(deps, first)
    assert any(
        r.levelno == logging.INFO and "deleted 1 unreferenced blob" in r.getMessage()
        for r in caplog.records
    )
    second = new_blob(deps)
    clock.advance(AGE + SECOND)  # old enough, and the last sweep was a day ago
    assert anyio.run(maintenance.run_once).orphans_deleted == 1
    assert not exists(deps, second)
    # An old orphan appearing right after a sweep waits for the next one.
    third = new_blob(deps)
    old = (clock.now() - 2 * AGE).timestamp()
    os.utime(tmp_path / "blobs" / "objects" / third[:2] / third[2:4] / third, (old, old))
    assert anyio.run(maintenance.run_once).orphans_deleted == 0
    clock.advance(ORPHAN_SWEEP_INTERVAL - SECOND)
    assert anyio.run(maintenance.run_once).orphans_deleted == 0
    assert exists(deps, third)
    clock.advance(SECOND)
    assert anyio.run(maintenance.run_once).orphans_deleted == 1
    assert not exists(deps, third)


def test_min_age_is_taken_from_deps(deps: Deps, clock: ManualClock) -> None:
    orphan = new_blob(deps)
    short = Deps(
        store=deps.store,
        blobs=deps.blobs,
        clock=clock,
        timing=deps.timing,
        orphan_blob_min_age=timedelta(minutes=5),
    )
    clock.advance(timedelta(minutes=4))
    assert collect(short) == 0
    clock.advance(timedelta(minutes=2))
    assert collect(short) == 1
    assert not exists(deps, orphan)


def test_referenced_blob_keys_answers_for_any_number_of_keys(
    metadata_store: SqlMetadataStore,
) -> None:
    """More keys than one statement binds: answered chunk by chunk, none lost."""
    keys = sorted(new_blob_key() for _ in range(1000))
    named = set(keys[::7]) | {keys[189], keys[190], keys[-1]}
    with metadata_store.transaction() as tx:
        tx.queue_blob_deletes(sorted(named), ManualClock().now())
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.referenced_blob_keys(keys) == named
        assert tx.referenced_blob_keys([]) == set()

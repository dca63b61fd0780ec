"""MetadataStore contract: `store_stats`, what the metrics' stored, upload and
job gauges show, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from openglacier.ids import new_job_id, new_upload_id
from openglacier.records import Job, JobAction, JobStatus, Upload, UploadState
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def test_empty_store(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction(readonly=True) as tx:
        stats = tx.store_stats()
    assert (stats.archives, stats.bytes, stats.uploads_in_progress) == ({}, {}, 0)
    assert (stats.jobs, stats.oldest_in_progress, stats.scrub_last_finished) == ({}, {}, None)


def test_counts_per_account_uploads_and_jobs(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        a1 = tx.create_vault("111122223333", "us-east-1", "a", T0)
        a2 = tx.create_vault("111122223333", "us-east-1", "b", T0)
        b = tx.create_vault("444455556666", "us-east-1", "a", T0)
        tx.record_write(a1.id, 2, 300, T0)
        tx.record_write(a2.id, 1, 50, T0)
        tx.record_write(b.id, 4, 4000, T0)
        tx.record_write(b.id, -1, -1000, T0)  # a deletion
        for state in (UploadState.ACTIVE, UploadState.ACTIVE, UploadState.COMPLETED):
            upload = Upload(new_upload_id(), a1.id, None, 1 << 20, T0, T0, state)
            tx.insert_upload(upload)
        base = Job(new_job_id(), a1.id, JobAction.ARCHIVE, JobStatus.IN_PROGRESS, T0, T0)
        older = T0 - timedelta(hours=2)
        for job in (
            replace(base, tier="Standard"),
            replace(base, job_id=new_job_id(), tier="Standard", created_at=older),
            replace(base, job_id=new_job_id(), tier="Bulk", status=JobStatus.SUCCEEDED),
            replace(base, job_id=new_job_id(), action=JobAction.INVENTORY, tier=None),
        ):
            tx.insert_job(job)
    with metadata_store.transaction(readonly=True) as tx:
        stats = tx.store_stats()
    assert stats.archives == {"111122223333": 3, "444455556666": 3}
    assert stats.bytes == {"111122223333": 350, "444455556666": 3000}
    assert stats.uploads_in_progress == 2
    assert stats.jobs == {
        ("ArchiveRetrieval", "Standard", "InProgress"): 2,
        ("ArchiveRetrieval", "Bulk", "Succeeded"): 1,
        ("InventoryRetrieval", "", "InProgress"): 1,
    }
    assert stats.oldest_in_progress == {
        ("ArchiveRetrieval", "Standard"): older,
        ("InventoryRetrieval", ""): T0,
    }

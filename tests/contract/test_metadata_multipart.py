"""MetadataStore contract: multipart uploads and parts (spec 2.20-2.25)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openglacier.errors import StorageError
from openglacier.ids import new_archive_id, new_blob_key, new_upload_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Part, Segment, Upload, UploadState, Vault
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
MIB = 1024 * 1024


def make_vault(tx: MetadataTx, name: str = "multi") -> Vault:
    return tx.create_vault("111122223333", "us-east-1", name, T0)


def make_upload(
    vault: Vault, *, created: datetime = T0, upload_id: str | None = None, part_size: int = MIB
) -> Upload:
    return Upload(
        upload_id=upload_id or new_upload_id(),
        vault_id=vault.id,
        description=None,
        part_size=part_size,
        created_at=created,
        last_activity_at=created,
        state=UploadState.ACTIVE,
    )


def make_part(upload: Upload, index: int, *, size: int | None = None) -> Part:
    size = upload.part_size if size is None else size
    return Part(
        upload_id=upload.upload_id,
        first_byte=index * upload.part_size,
        size=size,
        tree_hash=secrets.token_hex(32),
        sha256=secrets.token_hex(32),
        blob_key=new_blob_key(),
        uploaded_at=T0 + timedelta(seconds=index),
        leaf_hashes=secrets.token_bytes(32 * max(1, -(-size // MIB))),
    )


def archive_for(upload: Upload, size: int) -> Archive:
    return Archive(
        archive_id=new_archive_id(),
        vault_id=upload.vault_id,
        description=upload.description,
        size=size,
        tree_hash=secrets.token_hex(32),
        sha256=None,
        created_at=T0 + timedelta(hours=1),
        added_seq=1,
    )


def summary(part: Part) -> Part:
    return replace(part, leaf_hashes=b"")


def test_upload_round_trip_and_touch(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        upload = replace(make_upload(make_vault(tx)), description="my backup")
        tx.insert_upload(upload)
    with metadata_store.transaction() as tx:
        assert tx.get_upload(upload.upload_id) == upload
        assert tx.get_upload(upload.upload_id, for_update=True) == upload
        assert tx.get_upload(new_upload_id()) is None
        tx.touch_upload(upload.upload_id, T0 + timedelta(minutes=5))
    with metadata_store.transaction() as tx:
        got = tx.get_upload(upload.upload_id)
    assert got == replace(upload, last_activity_at=T0 + timedelta(minutes=5))
    assert isinstance(got.state, UploadState)


def test_list_uploads_orders_by_creation_then_id_and_skips_ended(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        vault, other = make_vault(tx), make_vault(tx, "other")
        later = make_upload(vault, created=T0 + timedelta(seconds=1))
        tied = [make_upload(vault, upload_id=c * 92) for c in "ZAm"]  # same created_at
        ended = make_upload(vault, created=T0 - timedelta(days=1))
        for upload in [later, *tied, ended, make_upload(other)]:
            tx.insert_upload(upload)
        tx.end_upload(ended.upload_id, UploadState.ABORTED, T0)
    expected = [*sorted(tied, key=lambda u: u.upload_id), later]
    with metadata_store.transaction() as tx:
        assert tx.list_uploads(vault.id, None, 10) == expected
        assert tx.list_uploads(vault.id, None, 2) == expected[:2]
        cursor = (expected[1].created_at, expected[1].upload_id)
        assert tx.list_uploads(vault.id, cursor, 10) == expected[2:]
        last = (later.created_at, later.upload_id)
        assert tx.list_uploads(vault.id, last, 10) == []


def test_put_part_list_and_count(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        tx.insert_upload(upload)
        parts = [make_part(upload, i) for i in range(5)]
        for part in reversed(parts):
            tx.put_part(part)
    with metadata_store.transaction() as tx:
        assert tx.count_parts(upload.upload_id) == 5
        # Listings leave the leaf hashes behind.
        assert tx.list_parts(upload.upload_id, 0, 100) == [summary(p) for p in parts]
        assert tx.list_parts(upload.upload_id, 2 * MIB, 2) == [summary(p) for p in parts[2:4]]
        assert tx.list_parts(upload.upload_id, 2 * MIB + 1, 10) == [summary(p) for p in parts[3:]]
        assert tx.list_parts(new_upload_id(), 0, 10) == []
        assert tx.count_parts(new_upload_id()) == 0


def test_put_part_replaces_and_queues_the_old_blob(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        tx.insert_upload(upload)
        first = make_part(upload, 1)
        tx.put_part(first)
        tx.put_part(first)  # a retry with the very same blob queues nothing
        assert tx.pending_blob_deletes(10) == []
    second = replace(make_part(upload, 1), size=MIB // 2)
    with metadata_store.transaction() as tx:
        tx.put_part(second)
    with metadata_store.transaction() as tx:
        assert tx.list_parts(upload.upload_id, 0, 10) == [summary(second)]
        assert tx.count_parts(upload.upload_id) == 1
        assert tx.pending_blob_deletes(10) == [first.blob_key]


def test_put_part_requires_an_active_upload(metadata_store: SqlMetadataStore) -> None:
    # A part landing after complete/abort would be an orphan nothing cleans up.
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        tx.insert_upload(upload)
        tx.end_upload(upload.upload_id, UploadState.ABORTED, T0)
    with pytest.raises(StorageError, match="not active"), metadata_store.transaction() as tx:
        tx.put_part(make_part(upload, 0))
    stranger = replace(upload, upload_id=new_upload_id())  # never inserted
    with pytest.raises(StorageError, match="not active"), metadata_store.transaction() as tx:
        tx.put_part(make_part(stranger, 0))
    with metadata_store.transaction() as tx:
        assert tx.count_parts(upload.upload_id) == 0


def test_complete_upload_moves_parts_into_segments(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx), part_size=2 * MIB)
        tx.insert_upload(upload)
        parts = [make_part(upload, i) for i in range(3)] + [make_part(upload, 3, size=12345)]
        for part in [parts[2], parts[0], parts[3], parts[1]]:
            tx.put_part(part)
    size = 6 * MIB + 12345
    archive = archive_for(upload, size)
    done_at = T0 + timedelta(hours=2)
    with metadata_store.transaction() as tx:
        tx.complete_upload(upload.upload_id, archive, done_at)
    with metadata_store.transaction() as tx:
        assert tx.get_archive(archive.archive_id) == archive
        assert tx.get_segments(archive.archive_id) == [
            Segment(archive.archive_id, i, p.first_byte, p.size, p.blob_key, p.leaf_hashes)
            for i, p in enumerate(parts)
        ]
        assert tx.count_parts(upload.upload_id) == 0
        assert tx.get_upload(upload.upload_id) == replace(
            upload,
            state=UploadState.COMPLETED,
            archive_id=archive.archive_id,
            archive_size=size,
            archive_tree_hash=archive.tree_hash,
            ended_at=done_at,
        )
        assert tx.list_uploads(upload.vault_id, None, 10) == []
        assert tx.pending_blob_deletes(10) == []  # the blobs now belong to the archive


@pytest.mark.slow
def test_complete_upload_of_ten_thousand_parts(metadata_store: SqlMetadataStore) -> None:
    count = 10_000
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        tx.insert_upload(upload)
        parts = [make_part(upload, i) for i in range(count)]
        for part in parts:
            tx.put_part(part)
    archive = archive_for(upload, count * MIB)
    with metadata_store.transaction() as tx:
        tx.complete_upload(upload.upload_id, archive, T0)
    with metadata_store.transaction() as tx:
        segments = tx.get_segments(archive.archive_id)
        assert tx.count_parts(upload.upload_id) == 0
    assert [s.seq for s in segments] == list(range(count))
    assert [s.offset for s in segments] == [i * MIB for i in range(count)]
    assert b"".join(s.leaf_hashes for s in segments) == b"".join(p.leaf_hashes for p in parts)


def test_complete_upload_of_an_ended_upload_fails_and_changes_nothing(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        tx.insert_upload(upload)
        tx.end_upload(upload.upload_id, UploadState.ABORTED, T0)
    archive = archive_for(upload, 0)
    with pytest.raises(StorageError, match="not active"), metadata_store.transaction() as tx:
        tx.complete_upload(upload.upload_id, archive, T0)
    with metadata_store.transaction() as tx:
        assert tx.get_archive(archive.archive_id) is None
        got = tx.get_upload(upload.upload_id)
        assert got is not None
        assert got.state is UploadState.ABORTED


def test_end_upload_deletes_parts_and_queues_their_blobs(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        upload = make_upload(make_vault(tx))
        bystander = make_upload(make_vault(tx, "other"))
        tx.insert_upload(upload)
        tx.insert_upload(bystander)
        parts = [make_part(upload, i) for i in range(3)]
        for part in parts:
            tx.put_part(part)
        tx.put_part(make_part(bystander, 0))
    with metadata_store.transaction() as tx:
        tx.end_upload(upload.upload_id, UploadState.ABORTED, T0 + timedelta(hours=1))
    with metadata_store.transaction() as tx:
        assert tx.count_parts(upload.upload_id) == 0
        assert tx.count_parts(bystander.upload_id) == 1
        assert sorted(tx.pending_blob_deletes(10)) == sorted(p.blob_key for p in parts)
        assert tx.get_upload(upload.upload_id) == replace(
            upload, state=UploadState.ABORTED, ended_at=T0 + timedelta(hours=1)
        )
        tx.end_upload(upload.upload_id, UploadState.ABORTED, T0 + timedelta(hours=2))
        again = tx.get_upload(upload.upload_id)
        assert again is not None
        assert again.ended_at == T0 + timedelta(hours=1)  # idempotent
        with pytest.raises(ValueError, match="complete_upload"):
            tx.end_upload(bystander.upload_id, UploadState.COMPLETED, T0)


def test_inactive_uploads_are_active_ones_idle_since(metadata_store: SqlMetadataStore) -> None:
    hour = timedelta(hours=1)
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        idle, busy, exact, ended = (make_upload(vault) for _ in range(4))
        for upload in (idle, busy, exact, ended):
            tx.insert_upload(upload)
        tx.touch_upload(busy.upload_id, T0 + 3 * hour)
        tx.touch_upload(exact.upload_id, T0 + 2 * hour)
        tx.end_upload(ended.upload_id, UploadState.ABORTED, T0)
    with metadata_store.transaction() as tx:
        assert tx.inactive_uploads(T0 + 2 * hour, 10) == [idle.upload_id, exact.upload_id]
        assert tx.inactive_uploads(T0 + 2 * hour, 1) == [idle.upload_id]
        assert tx.inactive_uploads(T0 - hour, 10) == []


def test_purge_ended_uploads_removes_only_old_ended_ones(metadata_store: SqlMetadataStore) -> None:
    day = timedelta(days=1)
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        old, recent, active, completed = (make_upload(vault) for _ in range(4))
        for upload in (old, recent, active, completed):
            tx.insert_upload(upload)
        tx.end_upload(old.upload_id, UploadState.ABORTED, T0)
        tx.end_upload(recent.upload_id, UploadState.ABORTED, T0 + 2 * day)
        tx.complete_upload(completed.upload_id, archive_for(completed, 0), T0)
    with metadata_store.transaction() as tx:
        assert tx.purge_ended_uploads(T0) == 0  # strictly before
        assert tx.purge_ended_uploads(T0 + day) == 2
        assert tx.get_upload(old.upload_id) is None
        assert tx.get_upload(completed.upload_id) is None
        assert tx.get_upload(recent.upload_id) is not None
        assert tx.get_upload(active.upload_id) is not None
        assert tx.purge_ended_uploads(T0 + 10 * day) == 1
        assert tx.get_upload(active.upload_id) is not None

"""The recorded blob URL and the blob migration (issue 13) on SQLite and
PostgreSQL metadata with filesystem blob stores: insert-if-absent with
concurrent first starts, the compare-and-set switch, paging through every
referenced blob exactly once, and what a migration copies, skips, replaces and
refuses. The source and destination stores use different codecs (a migration
decodes from one and encodes with the other's configuration): legacy codec 0
to encrypted and compressed, and back to the default."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openglacier.ids import new_archive_id, new_blob_key, new_job_id, new_upload_id
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
from openglacier.storage.blob_migration import Migration, MigrationError
from openglacier.storage.blob_url import BlobStoreMismatchError, record
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore, open_metadata_store
from openglacier.treehash import MIB
from support.codecs import CODECS, file_offset_of, flip_bit

NOW = datetime(2026, 12, 4, tzinfo=UTC)
ACCOUNT = "111122223333"


def leaves_of(data: bytes) -> bytes:
    starts = range(0, max(len(data), 1), MIB)
    return b"".join(hashlib.sha256(data[i : i + MIB]).digest() for i in starts)


@dataclass
class World:
    store: SqlMetadataStore
    source: FilesystemBlobStore
    dest: FilesystemBlobStore
    copied: dict[str, bytes] = field(default_factory=dict)  # what a migration must copy

    def blob(self, data: bytes, *, referenced: bool = True) -> str:
        key = new_blob_key()
        put_blob(self.source, key, [data])
        if referenced:
            self.copied[key] = data
        return key

    def path(self, root: Path, key: str) -> Path:
        return root / "objects" / key[0:2] / key[2:4] / key


@pytest.fixture(params=[("raw", "zstd-aes"), ("zstd-aes", "checked")], ids="-to-".join)
def world(
    metadata_store: SqlMetadataStore, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[World]:
    source_codec, dest_codec = request.param
    source = FilesystemBlobStore(tmp_path / "source", CODECS[source_codec])
    dest = FilesystemBlobStore(tmp_path / "dest", CODECS[dest_codec])
    yield World(metadata_store, source, dest)
    source.close()
    dest.close()


def vault_id(tx: MetadataTx) -> int:
    return tx.create_vault(ACCOUNT, "us-east-1", "v", NOW).id


def add_archive(tx: MetadataTx, key: str, data: bytes) -> str:
    archive = Archive(new_archive_id(), vault_id(tx), None, len(data), "0" * 64, None, NOW, 1)
    segment = Segment(archive.archive_id, 0, 0, len(data), key, leaves_of(data))
    tx.insert_archive(archive, [segment])
    return archive.archive_id


def add_part(tx: MetadataTx, key: str, data: bytes) -> None:
    upload = Upload(new_upload_id(), vault_id(tx), None, MIB, NOW, NOW, UploadState.ACTIVE)
    tx.insert_upload(upload)
    tx.put_part(Part(upload.upload_id, 0, len(data), "0" * 64, "0" * 64, key, NOW, leaves_of(data)))


def add_pin(tx: MetadataTx, archive_id: str, key: str, data: bytes) -> None:
    job = Job(new_job_id(), vault_id(tx), JobAction.ARCHIVE, JobStatus.SUCCEEDED, NOW, NOW)
    tx.insert_job(Job(**{**job.__dict__, "archive_id": archive_id}))
    tx.put_job_segments(job.job_id, [Segment(archive_id, 0, 0, len(data), key, leaves_of(data))])


def add_output(tx: MetadataTx, key: str, data: bytes) -> None:
    job = Job(new_job_id(), vault_id(tx), JobAction.INVENTORY, JobStatus.SUCCEEDED, NOW, NOW)
    tx.insert_job(Job(**{**job.__dict__, "output_blob_key": key, "output_size": len(data)}))


def populate(world: World) -> None:
    """Every kind of reference, keys named twice (two jobs pin one segment), an
    orphan and a queued blob (neither copied)."""
    with world.store.transaction() as tx:
        for i in range(4):
            data = os.urandom(i * 1000 + (2 * MIB + 17 if i == 0 else 0))
            key = world.blob(data)
            archive_id = add_archive(tx, key, data)
            for _ in range(i):  # pinned by i retrievals
                add_pin(tx, archive_id, key, data)
        for i in range(3):
            data = os.urandom(MIB + i)
            add_part(tx, world.blob(data), data)
        for i in range(2):
            data = f"inventory {i}".encode()
            add_output(tx, world.blob(data), data)
        tx.queue_blob_deletes([world.blob(b"queued", referenced=False)], NOW)
    world.blob(b"orphan", referenced=False)


# --- the recorded URL ------------------------------------------------------------------


def test_record_is_insert_if_absent_and_switch_is_compare_and_set(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        assert tx.recorded_blob_url() is None
        assert tx.record_blob_url("file:///a", NOW) == "file:///a"
        assert tx.record_blob_url("file:///b", NOW) == "file:///a"
        assert not tx.switch_blob_url("file:///b", "file:///c", NOW)
        assert tx.recorded_blob_url() == "file:///a"
        assert tx.switch_blob_url("file:///a", "file:///c", NOW)
        assert not tx.switch_blob_url(None, "file:///d", NOW)
        assert tx.recorded_blob_url() == "file:///c"


def test_concurrent_first_starts_agree_on_one_url(
    metadata_store: SqlMetadataStore, store_url: str, tmp_path: Path
) -> None:
    # metadata_store: the (reused) database emptied; each "process" opens its own.
    stores = [open_metadata_store(store_url) for _ in range(4)]
    with stores[0].transaction() as tx:
        assert tx.recorded_blob_url() is None
    barrier = threading.Barrier(len(stores))
    outcomes: dict[int, str] = {}

    def start(index: int) -> None:
        barrier.wait()
        try:
            record(stores[index], f"file://{tmp_path}/store-{index}", NOW)
            outcomes[index] = "recorded"
        except BlobStoreMismatchError as exc:
            outcomes[index] = str(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        winners = [i for i, outcome in outcomes.items() if outcome == "recorded"]
        assert len(winners) == 1, outcomes
        with stores[0].transaction(readonly=True) as tx:
            assert tx.recorded_blob_url() == f"file://{tmp_path}/store-{winners[0]}"
        for index, outcome in outcomes.items():
            if index != winners[0]:
                assert f"store-{winners[0]} (recorded" in outcome
    finally:
        for store in stores:
            store.close()


# --- what a migration reads and copies --------------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3, 500])
def test_blob_refs_names_every_referenced_blob_once(world: World, limit: int) -> None:
    populate(world)
    seen: list[str] = []
    after: str | None = None
    while True:
        with world.store.transaction(readonly=True) as tx:
            page = tx.blob_refs(after, limit)
        if not page:
            break
        seen += [ref.key for ref in page]
        for ref in page:
            assert ref.size == len(world.copied[ref.key])
            is_output = ref.owner.startswith("job ") and ref.leaf_hashes is None
            assert is_output or ref.leaf_hashes == leaves_of(world.copied[ref.key])
        after = page[-1].key
    assert seen == sorted(world.copied)
    with world.store.transaction(readonly=True) as tx:
        census = tx.blob_census()
    assert (census.blobs, census.size) == (
        len(world.copied),
        sum(len(d) for d in world.copied.values()),
    )
    assert census.queued_deletes == 1


def test_migration_copies_what_rows_name_and_switches(world: World) -> None:
    populate(world)
    migration = Migration(world.store, world.source, world.dest)
    before = migration.census()
    summary = migration.copy_all()
    migration.switch(None, "file:///dest", before)
    assert summary.copied == len(world.copied)
    assert summary.copied_bytes == sum(len(d) for d in world.copied.values())
    assert sorted(world.dest.keys()) == sorted(world.copied)  # no orphan, no queued blob
    for key, data in world.copied.items():
        assert b"".join(world.dest.open(key)) == data
        # Re-encoded with the destination's codec, not copied byte for byte.
        assert world.dest.stat(key).codec == world.dest.codecs.codec  # type: ignore[union-attr]
    with world.store.transaction(readonly=True) as tx:
        assert tx.recorded_blob_url() == "file:///dest"


def test_no_switch_when_the_metadata_changed_while_copying(world: World) -> None:
    populate(world)
    with world.store.transaction() as tx:
        tx.record_blob_url("file:///source", NOW)
    migration = Migration(world.store, world.source, world.dest)
    before = migration.census()
    migration.copy_all()
    with world.store.transaction() as tx:  # a server still running takes a part
        data = b"late part"
        add_part(tx, world.blob(data), data)
    with pytest.raises(MigrationError, match="metadata changed while the blobs were copied"):
        migration.switch("file:///source", "file:///dest", before)
    with world.store.transaction(readonly=True) as tx:
        assert tx.recorded_blob_url() == "file:///source"
    # Someone else switched meanwhile: refused too.
    with world.store.transaction() as tx:
        assert tx.switch_blob_url("file:///source", "file:///elsewhere", NOW)
    rerun = Migration(world.store, world.source, world.dest)
    census = rerun.census()
    with pytest.raises(MigrationError, match="no longer file:///source"):
        rerun.switch("file:///source", "file:///dest", census)


def test_a_rerun_skips_verified_copies_and_replaces_damaged_ones(
    world: World, tmp_path: Path
) -> None:
    populate(world)
    Migration(world.store, world.source, world.dest).copy_all()
    with world.store.transaction(readonly=True) as tx:
        refs = tx.blob_refs(None, 500)
    segment = next(r for r in refs if r.leaf_hashes is not None and r.size > 0)
    output = next(r for r in refs if r.leaf_hashes is None)
    for ref in (segment, output):  # one flipped payload byte at the destination
        path = world.path(tmp_path / "dest", ref.key)
        raw = bytearray(path.read_bytes())
        raw[32] ^= 0x01
        os.chmod(path, 0o600)
        path.write_bytes(bytes(raw))

    summary = Migration(world.store, world.source, world.dest).copy_all()

    assert (summary.copied, summary.skipped) == (2, len(world.copied) - 2)
    for key, data in world.copied.items():
        assert b"".join(world.dest.open(key)) == data


def test_a_damaged_source_blob_stops_the_migration(world: World, tmp_path: Path) -> None:
    populate(world)
    with world.store.transaction(readonly=True) as tx:
        victim = next(r for r in tx.blob_refs(None, 500) if r.size > MIB + 7)
    path = world.path(tmp_path / "source", victim.key)
    flip_bit(path, file_offset_of(path.read_bytes(), victim.key, MIB + 7))
    with pytest.raises(MigrationError) as info:
        Migration(world.store, world.source, world.dest).copy_all()
    message = str(info.value)
    assert message.startswith(f"blob {victim.key} ({victim.owner}) in the current store: ")
    # Codec 0: the migration's leaf check finds it; codecs 1+: the store's check.
    assert "leaf 1 " in message
    assert message.endswith("run the migration again")
    assert world.dest.stat(victim.key) is None


def test_a_missing_source_blob_stops_the_migration(world: World, tmp_path: Path) -> None:
    populate(world)
    with world.store.transaction(readonly=True) as tx:
        victim = tx.blob_refs(None, 500)[1]
    world.source.delete(victim.key)
    with pytest.raises(MigrationError) as info:
        Migration(world.store, world.source, world.dest).copy_all()
    assert str(info.value).startswith(f"blob {victim.key} ({victim.owner}) in the current store")
    assert ": missing;" in str(info.value)
    assert world.dest.stat(victim.key) is None

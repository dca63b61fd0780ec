"""`blobs rewrite` (storage/blob_rewrite.py) on SQLite and PostgreSQL metadata
with a filesystem blob store holding blobs of every codec and key: what is
re-encrypted, verified, switched, skipped, left (damaged) or queued (deleted
meanwhile, interrupted), and that a repoint waits for the writers that copy
blob keys between tables (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from test_blob_migration import World, add_archive, add_pin, leaves_of, populate, vault_id
from test_encryption_keys import NOW

from openglacier.ids import new_archive_id, new_blob_key, new_upload_id
from openglacier.keyring import Keyring
from openglacier.ports import BlobRef
from openglacier.records import Archive, Part, Upload, UploadState
from openglacier.storage.blob_rewrite import DEFAULT_GRACE, Rewrite, RewriteError, writer_codecs
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.treehash import MIB
from support.codecs import CODECS, KEYRING, OLD_KEYRING, file_offset_of, flip_bit

NEW = "k-new"


@pytest.fixture
def world(metadata_store: SqlMetadataStore, tmp_path: Path) -> Iterator[World]:
    """Blobs of one directory written over the deployment's history: codec 0
    (legacy), checked raw, zstd, and encrypted with the old key; the rewrite's
    store (`dest`) encrypts with k-new and reads every one of them."""
    root = tmp_path / "blobs"
    world = World(metadata_store, FilesystemBlobStore(root), FilesystemBlobStore(root))
    for config in ("raw", "checked", "zstd", CodecConfig(keyring=OLD_KEYRING)):
        world.source.close()
        world.source = FilesystemBlobStore(
            root, CODECS[config] if isinstance(config, str) else config
        )
        populate(world)
    world.dest.close()
    world.dest = FilesystemBlobStore(root, writer_codecs(CodecConfig(keyring=KEYRING), NEW))
    yield world
    world.source.close()
    world.dest.close()


def named_payloads(world: World) -> dict[str, bytes]:
    """Every blob rows name, read through the rewrite's store."""
    out: dict[str, bytes] = {}
    after: str | None = None
    while True:
        with world.store.transaction(readonly=True) as tx:
            page = tx.blob_refs(after, 100)
        if not page:
            return out
        for ref in page:
            out[ref.key] = b"".join(world.dest.open(ref.key))
        after = page[-1].key


def test_every_named_blob_ends_on_the_key_with_its_bytes(world: World) -> None:
    before = named_payloads(world)
    assert sorted(before.values()) == sorted(world.copied.values())
    done: list[int] = []
    summary = Rewrite(world.store, world.dest, NEW, done.append).run()
    assert (summary.rewritten, summary.skipped, summary.gone) == (len(world.copied), 0, 0)
    assert summary.rewritten_bytes == sum(done) == sum(len(d) for d in world.copied.values())
    assert summary.damaged == []
    after = named_payloads(world)
    assert sorted(after.values()) == sorted(before.values())
    assert not set(after) & set(before)  # every row names a new key
    for key in after:
        info = world.dest.stat(key)
        assert info is not None
        assert info.key_id == NEW
    with world.store.transaction() as tx:
        due_now = set(tx.pending_blob_deletes(1000, datetime.now(UTC)))
        assert not set(before) & due_now  # an hour's grace for reads begun before
        later = datetime.now(UTC) + DEFAULT_GRACE
        queued = set(tx.pending_blob_deletes(1000, later))
    assert set(before) <= queued  # the old blobs go through the deletion queue
    # A rerun finds nothing to do.
    again = Rewrite(world.store, world.dest, NEW).run()
    assert (again.rewritten, again.skipped) == (0, len(world.copied))


def test_a_killed_rewrite_resumes_and_its_unswitched_copy_is_an_orphan(world: World) -> None:
    copies: list[str] = []

    def killed_at_the_third(_ref: BlobRef, new_key: str) -> None:
        copies.append(new_key)
        if len(copies) == 3:
            raise KeyboardInterrupt

    first = Rewrite(world.store, world.dest, NEW)
    first.before_switch = killed_at_the_third
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert first.summary.rewritten == 2
    unswitched = copies[-1]
    with world.store.transaction(readonly=True) as tx:
        assert not tx.blob_named(unswitched)  # for the orphan collector
    assert world.dest.stat(unswitched) is not None
    summary = Rewrite(world.store, world.dest, NEW).run()
    assert (summary.rewritten, summary.skipped) == (len(world.copied) - 2, 2)
    assert sorted(named_payloads(world).values()) == sorted(world.copied.values())


def test_an_archive_deleted_during_its_copy_leaves_the_copy_queued(world: World) -> None:
    deleted: list[tuple[str, str]] = []

    def delete_the_archive(ref: BlobRef, new_key: str) -> None:
        # populate's 2 MiB archives are the ones no retrieval pins.
        if ref.owner.startswith("archive ") and ref.size > 2 * MIB and not deleted:
            with world.store.transaction() as tx:
                tx.remove_archive(ref.owner.removeprefix("archive "), 99, NOW)
            deleted.append((ref.key, new_key))

    job = Rewrite(world.store, world.dest, NEW)
    job.before_switch = delete_the_archive
    summary = job.run()
    assert (summary.gone, summary.rewritten) == (1, len(world.copied) - 1)
    old, copy = deleted[0]
    with world.store.transaction() as tx:
        assert not tx.blob_named(copy)
        queued = set(tx.pending_blob_deletes(1000))
    assert {old, copy} <= queued


def test_a_damaged_blob_is_left_as_it_was_and_reported(world: World, tmp_path: Path) -> None:
    with world.store.transaction(readonly=True) as tx:
        victim = next(r for r in tx.blob_refs(None, 1000) if r.size > MIB + 7)
    path = world.path(tmp_path / "blobs", victim.key)
    flip_bit(path, file_offset_of(path.read_bytes(), victim.key, MIB + 7))
    summary = Rewrite(world.store, world.dest, NEW).run()
    assert len(summary.damaged) == 1
    assert summary.damaged[0].startswith(f"{victim.key} ({victim.owner}): ")
    assert summary.rewritten == len(world.copied) - 1
    with world.store.transaction(readonly=True) as tx:
        assert tx.blob_named(victim.key)  # still named, still on its old key


def test_a_damaged_header_is_reported_like_damaged_bytes(world: World, tmp_path: Path) -> None:
    with world.store.transaction(readonly=True) as tx:
        victim = tx.blob_refs(None, 1)[0]
    flip_bit(world.path(tmp_path / "blobs", victim.key), 5)  # the codec id byte
    summary = Rewrite(world.store, world.dest, NEW).run()
    assert [d.split(": ")[0] for d in summary.damaged] == [f"{victim.key} ({victim.owner})"]
    assert summary.rewritten == len(world.copied) - 1


def test_the_writer_key_must_be_in_the_key_file() -> None:
    with pytest.raises(RewriteError, match="give --encryption-key-file FILE"):
        writer_codecs(CodecConfig(), NEW)
    with pytest.raises(RewriteError, match="key id k-gone is not in the test keyring"):
        writer_codecs(CodecConfig(keyring=KEYRING), "k-gone")
    codecs = writer_codecs(CodecConfig(compression_level=3, keyring=OLD_KEYRING), "k-old")
    assert codecs.keyring == OLD_KEYRING
    assert codecs.compression_level == 3
    assert writer_codecs(CodecConfig(keyring=KEYRING), "k-old").keyring == Keyring(
        KEYRING.keys, "k-old", KEYRING.source
    )


# --- row locks (PostgreSQL; SQLite serialises writers) ------------------------------------


def wait_until_blocked(store: SqlMetadataStore) -> None:
    """Until some other connection of this database waits for a row lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.01)
    raise AssertionError("the repoint never waited for the row lock")


@pytest.mark.postgres
@pytest.mark.parametrize("engine_name", ["postgresql"])
@pytest.mark.parametrize("holder", ["upload", "archive"])
def test_a_repoint_waits_for_a_writer_copying_the_key(
    metadata_store: SqlMetadataStore, holder: str
) -> None:
    """Completing an upload (parts -> segments) holds the upload row; a
    retrieval pinning segments holds the archive row: the repoint waits, and
    then repoints the rows that writer made."""
    old, new = new_blob_key(), new_blob_key()
    data = b"x" * 1000
    with metadata_store.transaction() as tx:
        if holder == "upload":
            upload = Upload(new_upload_id(), vault_id(tx), None, MIB, NOW, NOW, UploadState.ACTIVE)
            tx.insert_upload(upload)
            tx.put_part(
                Part(upload.upload_id, 0, len(data), "0" * 64, "0" * 64, old, NOW, leaves_of(data))
            )
        else:
            archive_id = add_archive(tx, old, data)
    moved: list[int] = []

    def repoint() -> None:
        with metadata_store.transaction() as tx:
            moved.append(tx.repoint_blob(old, new, NOW))

    thread = threading.Thread(target=repoint)
    with metadata_store.transaction() as tx:
        if holder == "upload":
            tx.get_upload(upload.upload_id, for_update=True)
        else:
            tx.get_archive(archive_id, for_update=True)
        thread.start()
        wait_until_blocked(metadata_store)
        if holder == "upload":
            archive = Archive(
                new_archive_id(), vault_id(tx), None, len(data), "0" * 64, None, NOW, 1
            )
            tx.complete_upload(upload.upload_id, archive, NOW)
            archive_id = archive.archive_id
        else:
            segments = tx.get_segments(archive_id)
            add_pin(tx, archive_id, segments[0].blob_key, data)
    thread.join()
    assert moved == [1 if holder == "upload" else 2]
    with metadata_store.transaction() as tx:
        assert [s.blob_key for s in tx.get_segments(archive_id)] == [new]
        assert not tx.blob_named(old)
        assert tx.pending_blob_deletes(10) == [old]

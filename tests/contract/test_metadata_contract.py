"""MetadataStore contract: vaults, inventory, tags, archives, multipart uploads.

Runs unchanged over SQLite and PostgreSQL (fixtures in conftest.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openglacier.errors import StorageError
from openglacier.ids import new_archive_id, new_blob_key, new_upload_id
from openglacier.ports import MetadataTx
from openglacier.records import Archive, Part, Segment, Upload, UploadState, Vault
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ACCOUNT = "111122223333"
REGION = "us-east-1"
MIB = 1024 * 1024


def leaves(n: int) -> bytes:
    return secrets.token_bytes(32 * n)


def make_vault(tx: MetadataTx, name: str = "photos", now: datetime = T0) -> Vault:
    return tx.create_vault(ACCOUNT, REGION, name, now)


def make_archive(vault: Vault, *, size: int = 3 * MIB, seq: int = 1, now: datetime = T0) -> Archive:
    return Archive(
        archive_id=new_archive_id(),
        vault_id=vault.id,
        description="backup 1",
        size=size,
        tree_hash="ab" * 32,
        sha256="cd" * 32,
        created_at=now,
        added_seq=seq,
    )


def one_segment(archive: Archive) -> Segment:
    return Segment(archive.archive_id, 0, 0, archive.size, new_blob_key(), leaves(3))


def make_upload(vault: Vault, *, created: datetime = T0, upload_id: str | None = None) -> Upload:
    return Upload(
        upload_id=upload_id or new_upload_id(),
        vault_id=vault.id,
        description="multi",
        part_size=MIB,
        created_at=created,
        last_activity_at=created,
        state=UploadState.ACTIVE,
    )


def make_part(upload: Upload, index: int, *, size: int = MIB, leaf_count: int = 1) -> Part:
    return Part(
        upload_id=upload.upload_id,
        first_byte=index * upload.part_size,
        size=size,
        tree_hash=f"{index:064x}",
        sha256=f"{index + 1:064x}",
        blob_key=new_blob_key(),
        uploaded_at=T0,
        leaf_hashes=leaves(leaf_count),
    )


# --- vaults ------------------------------------------------------------------


def test_create_vault_is_idempotent(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        first = make_vault(tx, now=T0)
        again = make_vault(tx, now=T0 + timedelta(hours=1))
    with metadata_store.transaction() as tx:
        later = make_vault(tx, now=T0 + timedelta(days=1))
        assert tx.count_vaults(ACCOUNT, REGION) == 1
    assert first == again == later
    assert first.created_at == T0
    assert (first.write_seq, first.live_count, first.live_size) == (0, 0, 0)
    assert (first.inventory_seq, first.inventory_count, first.inventory_size) == (0, 0, 0)
    assert first.inventory_date is None
    assert first.last_write_at is None
    assert not first.dirty


def test_vaults_are_scoped_by_account_and_region(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        a = tx.create_vault(ACCOUNT, REGION, "v", T0)
        b = tx.create_vault("999988887777", REGION, "v", T0)
        c = tx.create_vault(ACCOUNT, "eu-west-1", "v", T0)
        assert len({a.id, b.id, c.id}) == 3
        assert tx.count_vaults(ACCOUNT, REGION) == 1
        assert [v.id for v in tx.list_vaults(ACCOUNT, "eu-west-1", None, 10)] == [c.id]
        assert tx.get_vault("999988887777", REGION, "v") == b
        assert tx.all_vault_ids() == sorted([a.id, b.id, c.id])


def test_get_vault_by_name_and_id(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
    with metadata_store.transaction() as tx:
        assert tx.get_vault(ACCOUNT, REGION, "photos") == vault
        assert tx.get_vault(ACCOUNT, REGION, "photos", for_update=True) == vault
        assert tx.get_vault_by_id(vault.id) == vault
        assert tx.get_vault_by_id(vault.id, for_update=True) == vault
        assert tx.get_vault(ACCOUNT, REGION, "Photos") is None
        assert tx.get_vault_by_id(vault.id + 1000) is None


def test_vault_names_list_in_binary_order(metadata_store: SqlMetadataStore) -> None:
    names = ["a", "_", "B", "A", "b", "Z", "0", "-", ".", "a.b", "a-b", "a_b", "aB"]
    with metadata_store.transaction() as tx:
        for name in names:
            make_vault(tx, name)
    with metadata_store.transaction() as tx:
        listed = [v.name for v in tx.list_vaults(ACCOUNT, REGION, None, 100)]
    assert listed == sorted(names)  # Python orders str by code point = ASCII bytes
    assert listed[:6] == ["-", ".", "0", "A", "B", "Z"]
    assert listed.index("_") < listed.index("a")


vault_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.",
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.sets(vault_names, min_size=1, max_size=15), page=st.integers(1, 6))
def test_list_vaults_pages_through_every_name_in_order(
    metadata_store: SqlMetadataStore, names: set[str], page: int
) -> None:
    account = str(100000000000 + secrets.randbelow(10**11))  # fresh per example
    with metadata_store.transaction() as tx:
        for name in names:
            tx.create_vault(account, REGION, name, T0)
    seen: list[str] = []
    start: str | None = None
    while True:
        with metadata_store.transaction() as tx:
            batch = tx.list_vaults(account, REGION, start, page + 1)
        seen.extend(v.name for v in batch[:page])
        if len(batch) <= page:
            break
        start = batch[page].name  # the marker names the first vault of the next page
    assert seen == sorted(names)


def test_list_vaults_start_name_is_inclusive_and_limit_caps(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        for name in ["alpha", "beta", "delta", "gamma"]:
            make_vault(tx, name)
        assert [v.name for v in tx.list_vaults(ACCOUNT, REGION, "beta", 2)] == ["beta", "delta"]
        assert [v.name for v in tx.list_vaults(ACCOUNT, REGION, "c", 10)] == ["delta", "gamma"]
        assert [v.name for v in tx.list_vaults(ACCOUNT, REGION, None, 1)] == ["alpha"]
        assert tx.list_vaults(ACCOUNT, REGION, "zzz", 10) == []


# --- writes and inventory ------------------------------------------------------


def test_record_write_bumps_sequence_and_live_counters(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        assert tx.record_write(vault.id, 1, 100, T0 + timedelta(seconds=1)) == 1
        assert tx.record_write(vault.id, 1, 50, T0 + timedelta(seconds=2)) == 2
        assert tx.record_write(vault.id, -1, -100, T0 + timedelta(seconds=3)) == 3
    with metadata_store.transaction() as tx:
        after = tx.get_vault_by_id(vault.id)
    assert after is not None
    assert (after.write_seq, after.live_count, after.live_size) == (3, 1, 50)
    assert after.last_write_at == T0 + timedelta(seconds=3)
    assert after.dirty
    # DescribeVault reports the last inventory, not live data (spec 5).
    assert (after.inventory_count, after.inventory_size, after.inventory_date) == (0, 0, None)


def test_record_write_on_missing_vault_fails(metadata_store: SqlMetadataStore) -> None:
    with pytest.raises(StorageError), metadata_store.transaction() as tx:
        tx.record_write(424242, 1, 1, T0)


def test_take_inventory_snapshots_only_dirty_vaults(metadata_store: SqlMetadataStore) -> None:
    t1, t2 = T0 + timedelta(days=1), T0 + timedelta(days=2)
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        assert tx.take_inventory(vault.id, t1) is None  # never written: nothing to report
        assert tx.latest_inventory(vault.id) is None
        tx.record_write(vault.id, 1, 1000, T0)
        tx.record_write(vault.id, 1, 24, T0)
    with metadata_store.transaction() as tx:
        snap = tx.take_inventory(vault.id, t1)
        assert snap is not None
        assert (snap.vault_id, snap.seq, snap.taken_at) == (vault.id, 2, t1)
        # Raw bytes: the domain adds the 32 KiB-per-archive overhead (spec 2.0).
        assert (snap.archive_count, snap.size_in_bytes) == (2, 1024)
        assert tx.take_inventory(vault.id, t2) is None  # clean: date must not move
        assert tx.latest_inventory(vault.id) == snap
        after = tx.get_vault_by_id(vault.id)
    assert after is not None
    assert not after.dirty
    assert (after.inventory_seq, after.inventory_date) == (2, t1)
    assert (after.inventory_count, after.inventory_size) == (2, 1024)
    with metadata_store.transaction() as tx:
        tx.record_write(vault.id, -1, -24, t2)
        second = tx.take_inventory(vault.id, t2)
        assert second is not None
        assert (second.seq, second.archive_count, second.size_in_bytes) == (3, 1, 1000)
        assert tx.latest_inventory(vault.id) == second


def test_take_inventory_purges_archives_removed_before_it(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        kept = make_archive(vault, seq=tx.record_write(vault.id, 1, 3 * MIB, T0))
        tx.insert_archive(kept, [one_segment(kept)])
        gone = make_archive(vault, seq=tx.record_write(vault.id, 1, 3 * MIB, T0))
        tx.insert_archive(gone, [one_segment(gone)])
        removed_at = tx.record_write(vault.id, -1, -3 * MIB, T0)
        tx.remove_archive(gone.archive_id, removed_at, T0)
    with metadata_store.transaction() as tx:
        # Until the next inventory the removed row is still there, marked.
        row = tx.get_archive(gone.archive_id)
        assert row is not None
        assert row.removed_seq == removed_at
        assert [a.archive_id for a in tx.list_live_archives(vault.id, None, 10)] == [
            kept.archive_id
        ]
        snap = tx.take_inventory(vault.id, T0 + timedelta(days=1))
        assert snap is not None
        assert (snap.seq, snap.archive_count) == (removed_at, 1)
        assert tx.get_archive(gone.archive_id) is None
        assert tx.get_archive(kept.archive_id) == kept


def test_vaults_due_for_inventory(metadata_store: SqlMetadataStore) -> None:
    day = timedelta(days=1)
    with metadata_store.transaction() as tx:
        clean = make_vault(tx, "clean", now=T0)
        old = make_vault(tx, "old", now=T0)
        young = make_vault(tx, "young", now=T0 + 2 * day)
        inventoried = make_vault(tx, "inventoried", now=T0)
        for vault in (old, young, inventoried):
            tx.record_write(vault.id, 1, 1, T0 + 2 * day)
        tx.take_inventory(inventoried.id, T0 + 3 * day)
        tx.record_write(inventoried.id, 1, 1, T0 + 3 * day)  # dirty again
    with metadata_store.transaction() as tx:
        assert tx.vaults_due_for_inventory(T0 + day, 10) == [old.id]
        due = tx.vaults_due_for_inventory(T0 + 2 * day, 10)
        assert due == [old.id, young.id]  # oldest baseline first
        due_all = tx.vaults_due_for_inventory(T0 + 3 * day, 10)
        assert set(due_all) == {old.id, young.id, inventoried.id}
        assert clean.id not in due_all
        assert tx.vaults_due_for_inventory(T0 + 3 * day, 1) == [old.id]


# --- tags --------------------------------------------------------------------


def test_tags_put_replace_and_delete(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        other = make_vault(tx, "other")
        assert tx.get_tags(vault.id) == {}
        tx.put_tags(vault.id, {"owner": "ann", "Owner": "bob", "empty": ""})
        tx.put_tags(other.id, {"owner": "zed"})
        tx.put_tags(vault.id, {"owner": "cat", "team": "ops"})
        tx.put_tags(vault.id, {})
    with metadata_store.transaction() as tx:
        assert tx.get_tags(vault.id) == {"owner": "cat", "Owner": "bob", "empty": "", "team": "ops"}
        tx.delete_tags(vault.id, ["owner", "missing"])
        tx.delete_tags(vault.id, [])
    with metadata_store.transaction() as tx:
        assert tx.get_tags(vault.id) == {"Owner": "bob", "empty": "", "team": "ops"}
        assert tx.get_tags(other.id) == {"owner": "zed"}


# --- archives ------------------------------------------------------------------


def test_archive_and_segments_round_trip(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archive = make_archive(vault, size=5 * MIB + 7)
        segments = [
            Segment(archive.archive_id, 0, 0, 4 * MIB, new_blob_key(), leaves(4)),
            Segment(archive.archive_id, 1, 4 * MIB, MIB + 7, new_blob_key(), leaves(2)),
        ]
        tx.insert_archive(archive, list(reversed(segments)))
        bare = Archive(new_archive_id(), vault.id, None, 0, "e3" * 32, None, T0, 2)
        tx.insert_archive(bare, [])
    with metadata_store.transaction() as tx:
        assert tx.get_archive(archive.archive_id) == archive
        assert tx.get_archive(bare.archive_id) == bare
        assert tx.get_segments(archive.archive_id) == segments
        assert tx.get_segments(bare.archive_id) == []
        assert tx.get_archive(new_archive_id()) is None


def test_insert_archive_rejects_foreign_segments(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archive, stranger = make_archive(vault), make_archive(vault)
        with pytest.raises(ValueError, match="other archives"):
            tx.insert_archive(archive, [one_segment(stranger)])


def test_list_live_archives_pages_by_id(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault, other = make_vault(tx), make_vault(tx, "other")
        archives = [make_archive(vault, seq=i) for i in range(1, 8)]
        for archive in archives:
            tx.insert_archive(archive, [one_segment(archive)])
        foreign = make_archive(other)
        tx.insert_archive(foreign, [])
        tx.remove_archive(archives[3].archive_id, 8, T0)
    expected = sorted(a.archive_id for a in archives if a is not archives[3])
    seen: list[str] = []
    after: str | None = None
    with metadata_store.transaction() as tx:
        while batch := tx.list_live_archives(vault.id, after, 2):
            assert len(batch) <= 2
            seen.extend(a.archive_id for a in batch)
            after = batch[-1].archive_id
    assert seen == expected


def test_remove_archive_marks_row_and_queues_its_blobs(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault = make_vault(tx)
        archive = make_archive(vault)
        segments = [
            Segment(archive.archive_id, 0, 0, 2 * MIB, new_blob_key(), leaves(2)),
            Segment(archive.archive_id, 1, 2 * MIB, MIB, new_blob_key(), leaves(1)),
        ]
        tx.insert_archive(archive, segments)
        assert tx.pending_blob_deletes(10) == []
    with metadata_store.transaction() as tx:
        tx.remove_archive(archive.archive_id, 5, T0)
    with metadata_store.transaction() as tx:
        row = tx.get_archive(archive.archive_id)
        assert row is not None
        assert row.removed_seq == 5
        assert tx.get_segments(archive.archive_id) == []
        assert sorted(tx.pending_blob_deletes(10)) == sorted(s.blob_key for s in segments)
        tx.remove_archive(archive.archive_id, 9, T0)  # already removed: no change
        again = tx.get_archive(archive.archive_id)
        assert again is not None
        assert again.removed_seq == 5


# --- vault deletion ------------------------------------------------------------


def test_delete_vault_cascades_and_queues_remaining_blobs(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        vault, bystander = make_vault(tx), make_vault(tx, "bystander")
        tx.put_tags(vault.id, {"k": "v"})
        live = make_archive(vault, seq=tx.record_write(vault.id, 1, 3 * MIB, T0))
        live_segment = one_segment(live)
        tx.insert_archive(live, [live_segment])
        removed = make_archive(vault, seq=tx.record_write(vault.id, 1, 3 * MIB, T0))
        tx.insert_archive(removed, [one_segment(removed)])
        assert tx.take_inventory(vault.id, T0) is not None
        # Removed after the inventory: the row outlives the removal until the next one.
        tx.remove_archive(removed.archive_id, tx.record_write(vault.id, -1, -3 * MIB, T0), T0)
        assert tx.get_archive(removed.archive_id) is not None
        active, ended = make_upload(vault), make_upload(vault)
        tx.insert_upload(active)
        tx.insert_upload(ended)
        active_parts = [make_part(active, i) for i in range(3)]
        for part in active_parts:
            tx.put_part(part)
        tx.put_part(make_part(ended, 0))
        tx.end_upload(ended.upload_id, UploadState.ABORTED, T0)
        queued_before = set(tx.pending_blob_deletes(100))
        survivor = make_archive(bystander)
        tx.insert_archive(survivor, [one_segment(survivor)])
        tx.put_tags(bystander.id, {"k": "v"})
    with metadata_store.transaction() as tx:
        tx.delete_vault(vault.id, T0)
    with metadata_store.transaction() as tx:
        assert tx.get_vault_by_id(vault.id) is None
        assert tx.get_tags(vault.id) == {}
        assert tx.latest_inventory(vault.id) is None
        assert tx.get_archive(live.archive_id) is None
        assert tx.get_archive(removed.archive_id) is None
        assert tx.get_segments(live.archive_id) == []
        assert tx.get_upload(active.upload_id) is None
        assert tx.get_upload(ended.upload_id) is None
        assert tx.count_parts(active.upload_id) == 0
        expected = queued_before | {live_segment.blob_key} | {p.blob_key for p in active_parts}
        assert set(tx.pending_blob_deletes(100)) == expected
        # Nothing of the other vault was touched.
        assert tx.get_archive(survivor.archive_id) == survivor
        assert len(tx.get_segments(survivor.archive_id)) == 1
        assert tx.get_tags(bystander.id) == {"k": "v"}
        assert tx.count_vaults(ACCOUNT, REGION) == 1

"""Damage records, the scrubber's state row and its blob walk, on SQLite and
PostgreSQL: what domain/damage.py and domain/scrub/ rely on."""

from __future__ import annotations

import secrets
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from openglacier.ids import new_archive_id, new_blob_key, new_upload_id
from openglacier.ports import DamageRecord, MetadataTx, ScrubState
from openglacier.records import Archive, Part, Segment, Upload, UploadState
from openglacier.storage.metadata.store import SqlMetadataStore

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ARN = "arn:aws:glacier:us-east-1:111122223333:vaults/v"
MIN = timedelta(minutes=1)


def finding(blob_key: str, archive_id: str | None = "A", **changes: object) -> DamageRecord:
    base = DamageRecord(
        id=0,
        blob_key=blob_key,
        archive_id=archive_id,
        upload_id=None,
        vault=ARN,
        problem=f"blob {blob_key}: leaf 1 does not match its stored SHA-256",
        found_by="scrub",
        found_at=T0,
        last_seen_at=T0,
        quarantined=True,
        repair_note="no replica configured: restore the archive from another copy",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_finding_is_stored_and_quarantines_its_archive(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        stored = tx.record_damage(finding("k1"))
    assert stored.id > 0
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.open_damage("A") == stored
        assert tx.open_damage("B") is None
        assert tx.open_damage_for_blob("k1") == stored
        assert tx.list_damage(repaired=None, after_id=None, limit=10) == [stored]
        assert tx.count_damage() == (1, 0)


def test_the_same_blob_found_again_updates_the_open_record(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        first = tx.record_damage(finding("k1", quarantined=False, found_by="read"))
        again = tx.record_damage(finding("k1", found_at=T0 + MIN, found_by="scrub"))
    assert again.id == first.id
    assert (again.found_at, again.last_seen_at, again.found_by) == (T0, T0 + MIN, "read")
    assert again.quarantined  # the later finding knew of no good copy
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.list_damage(repaired=None, after_id=None, limit=10) == [again]


def test_a_repaired_record_no_longer_quarantines_and_a_new_finding_opens_another(
    metadata_store: SqlMetadataStore,
) -> None:
    with metadata_store.transaction() as tx:
        record = tx.record_damage(finding("k1"))
        tx.note_damage(record.id, "both copies damaged")
        assert tx.close_damage(record.id, T0 + MIN, "restored from the replica")
        assert not tx.close_damage(record.id, T0 + MIN, "twice")
        tx.note_damage(record.id, "ignored: the record is closed")
    with metadata_store.transaction(readonly=True) as tx:
        assert tx.open_damage("A") is None
        (closed,) = tx.list_damage(repaired=True, after_id=None, limit=10)
        assert tx.list_damage(repaired=False, after_id=None, limit=10) == []
    assert (closed.repaired_at, closed.repair_note) == (T0 + MIN, "restored from the replica")
    assert not closed.quarantined
    with metadata_store.transaction() as tx:
        reopened = tx.record_damage(finding("k1", found_at=T0 + 2 * MIN))
        assert reopened.id != record.id
        assert tx.count_damage() == (1, 1)


def test_records_page_by_id_and_long_texts_fit(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        ids = [tx.record_damage(finding(f"k{i}", problem="x" * 5000)).id for i in range(5)]
    with metadata_store.transaction(readonly=True) as tx:
        page = tx.list_damage(repaired=False, after_id=ids[1], limit=2)
    assert [r.id for r in page] == ids[2:4]
    assert len(page[0].problem) == 1024


def test_an_upload_part_finding_names_the_upload(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        stored = tx.record_damage(finding("k1", archive_id=None, upload_id="U"))
    assert (stored.archive_id, stored.upload_id) == (None, "U")


# --- the lease ---------------------------------------------------------------------


def test_one_holder_at_a_time_until_the_lease_expires(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        assert tx.scrub_state() is None
        taken = tx.take_scrub_lease("a", T0, T0 + MIN)
        assert taken is not None
        assert (taken.lease_holder, taken.lease_until, taken.pass_started_at) == (
            "a",
            T0 + MIN,
            None,
        )
        assert tx.take_scrub_lease("b", T0 + MIN / 2, T0 + 2 * MIN) is None
        renewed = tx.take_scrub_lease("a", T0 + MIN / 2, T0 + 2 * MIN)  # its own: renewed
        assert renewed is not None
        assert renewed.lease_until == T0 + 2 * MIN
        # Expired: another holder takes it over, with the progress as it was.
        assert tx.save_scrub_state("a", replace(renewed, cursor_key="k5", blobs_done=5))
        over = tx.take_scrub_lease("b", T0 + 2 * MIN, T0 + 3 * MIN)
        assert over is not None
        assert (over.lease_holder, over.cursor_key, over.blobs_done) == ("b", "k5", 5)
        # The old holder's writes are fenced off.
        assert not tx.save_scrub_state("a", replace(renewed, cursor_key="k9"))
        assert tx.save_scrub_state("b", replace(over, lease_holder=None, lease_until=None))
        assert tx.take_scrub_lease("a", T0 + 2 * MIN, T0 + 3 * MIN) is not None


def test_two_takers_at_once_never_both_win(metadata_store: SqlMetadataStore) -> None:
    with metadata_store.transaction() as tx:
        tx.take_scrub_lease("seed", T0, T0)  # the row exists, its lease expired
    results: dict[str, ScrubState | None] = {}
    barrier = threading.Barrier(8)

    def take(holder: str) -> None:
        barrier.wait()
        with metadata_store.transaction() as tx:
            results[holder] = tx.take_scrub_lease(holder, T0 + MIN, T0 + 2 * MIN)

    threads = [threading.Thread(target=take, args=(f"h{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [h for h, state in results.items() if state is not None]
    assert len(results) == 8
    assert len(winners) == 1
    with metadata_store.transaction(readonly=True) as tx:
        state = tx.scrub_state()
    assert state is not None
    assert state.lease_holder == winners[0]


# --- the blob walk ---------------------------------------------------------------------


def _archive(tx: MetadataTx, vault_id: int, keys: list[str]) -> str:
    archive_id = new_archive_id()
    archive = Archive(archive_id, vault_id, None, 7 * len(keys), "0" * 64, None, T0, 1)
    segments = [
        Segment(archive_id, i, i << 20, 7, key, secrets.token_bytes(32))
        for i, key in enumerate(keys)
    ]
    tx.insert_archive(archive, segments)
    return archive_id


def _upload(tx: MetadataTx, vault_id: int, key: str, state: UploadState) -> str:
    upload_id = new_upload_id()
    tx.insert_upload(Upload(upload_id, vault_id, None, 1 << 20, T0, T0, UploadState.ACTIVE))
    tx.put_part(Part(upload_id, 0, 9, "0" * 64, "0" * 64, key, T0, secrets.token_bytes(32)))
    if state is not UploadState.ACTIVE:
        tx.end_upload(upload_id, state, T0)
    return upload_id


def test_targets_are_live_segments_and_active_parts_in_key_order(
    metadata_store: SqlMetadataStore,
) -> None:
    keys = sorted(new_blob_key() for _ in range(9))
    with metadata_store.transaction() as tx:
        vault = tx.create_vault("111122223333", "us-east-1", "v", T0)
        live = _archive(tx, vault.id, [keys[0], keys[3], keys[5]])
        gone = _archive(tx, vault.id, [keys[1]])
        tx.remove_archive(gone, 2, T0)
        active = _upload(tx, vault.id, keys[2], UploadState.ACTIVE)
        _upload(tx, vault.id, keys[4], UploadState.ABORTED)
        also = _upload(tx, vault.id, keys[6], UploadState.ACTIVE)
        _archive(tx, vault.id, [keys[7], keys[8]])
    want = [keys[i] for i in (0, 2, 3, 5, 6, 7, 8)]
    with metadata_store.transaction(readonly=True) as tx:
        everything = tx.scrub_targets(None, 100)
        assert [t.key for t in everything] == want
        assert tx.scrub_census() == (7, 5 * 7 + 2 * 9)
        # Paged with a small limit: the same keys, each once, in order.
        paged: list[str] = []
        after: str | None = None
        while page := tx.scrub_targets(after, 2):
            paged += [t.key for t in page]
            after = page[-1].key
    assert paged == want
    by_key = {t.key: t for t in everything}
    assert (by_key[keys[0]].archive_id, by_key[keys[0]].upload_id) == (live, None)
    assert (by_key[keys[2]].archive_id, by_key[keys[2]].upload_id) == (None, active)
    assert by_key[keys[6]].upload_id == also
    assert by_key[keys[2]].size == 9
    assert all(t.vault_id == vault.id and len(t.leaf_hashes) == 32 for t in everything)

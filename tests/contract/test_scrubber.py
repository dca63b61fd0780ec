"""The scrubber (domain/scrub/) on real stores: SQLite and PostgreSQL metadata,
filesystem blobs damaged on disk, a ManualClock (no sleeps: the paced pass's
sleep moves the clock).

A pass finds each kind of damage and records it; it resumes from its cursor
after a stop; one of two scrubbers over one metadata store scrubs; passes
follow the interval at the rate; a replicated store's damaged copy is restored
from the good one (a test-only BlobCopies over two real filesystem stores).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY

from openglacier.clock import PROFILES, ManualClock
from openglacier.domain.context import Deps
from openglacier.domain.damage import NO_REPLICA_NOTE
from openglacier.domain.scrub import Scrubber, ScrubBusy
from openglacier.domain.scrub.repair import BOTH_DAMAGED_NOTE, RESTORED_NOTE
from openglacier.domain.scrub.state import LeaseLost
from openglacier.ids import new_archive_id, new_blob_key, new_upload_id
from openglacier.ports import DamageRecord, ScrubState
from openglacier.records import Archive, Part, Segment, Upload, UploadState
from openglacier.storage.blobs import put_blob
from openglacier.storage.blobs.filesystem import FilesystemBlobStore
from openglacier.storage.metadata.store import SqlMetadataStore
from openglacier.treehash import MIB, tree_hash
from support.blobfiles import blob_file, flip_bit, truncate, zero_range

ACCOUNT, REGION, VAULT = "111122223333", "us-east-1", "scrubbed"
ARN = f"arn:aws:glacier:{REGION}:{ACCOUNT}:vaults/{VAULT}"


def leaves(data: bytes) -> bytes:
    return b"".join(hashlib.sha256(data[i : i + MIB]).digest() for i in range(0, len(data), MIB))


@dataclass(frozen=True)
class Stored:
    owner: str  # archive or upload id
    keys: tuple[str, ...]


def add_archive(deps: Deps, data: bytes, segment_mib: int | None = None) -> Stored:
    """An archive of one segment, or of segments of `segment_mib` MiB."""
    step = segment_mib * MIB if segment_mib else len(data)
    archive_id = new_archive_id()
    segments = []
    for seq, offset in enumerate(range(0, len(data), step)):
        piece = data[offset : offset + step]
        key = new_blob_key()
        put_blob(deps.blobs, key, [piece])
        segments.append(Segment(archive_id, seq, offset, len(piece), key, leaves(piece)))
    now = deps.clock.now()
    with deps.store.transaction() as tx:
        vault = tx.create_vault(ACCOUNT, REGION, VAULT, now)
        archive = Archive(archive_id, vault.id, None, len(data), tree_hash(data), None, now, 1)
        tx.insert_archive(archive, segments)
    return Stored(archive_id, tuple(s.blob_key for s in segments))


def add_part(deps: Deps, data: bytes) -> Stored:
    """An active multipart upload with one part."""
    upload_id, key, now = new_upload_id(), new_blob_key(), deps.clock.now()
    put_blob(deps.blobs, key, [data])
    with deps.store.transaction() as tx:
        vault = tx.create_vault(ACCOUNT, REGION, VAULT, now)
        tx.insert_upload(Upload(upload_id, vault.id, None, 4 * MIB, now, now, UploadState.ACTIVE))
        sha = hashlib.sha256(data).hexdigest()
        tx.put_part(Part(upload_id, 0, len(data), tree_hash(data), sha, key, now, leaves(data)))
    return Stored(upload_id, (key,))


def path(deps: Deps, key: str) -> Path:
    assert isinstance(deps.blobs, FilesystemBlobStore)
    return blob_file(deps.blobs.root, key)


def records(deps: Deps, repaired: bool | None = None) -> list[DamageRecord]:
    with deps.store.transaction(readonly=True) as tx:
        return tx.list_damage(repaired=repaired, after_id=None, limit=1000)


def state(deps: Deps) -> ScrubState:
    with deps.store.transaction(readonly=True) as tx:
        found = tx.scrub_state()
    assert found is not None
    return found


def quarantined(deps: Deps, archive_id: str) -> bool:
    with deps.store.transaction(readonly=True) as tx:
        return tx.open_damage(archive_id) is not None


def found_by_scrub() -> float:
    value = REGISTRY.get_sample_value("openglacier_damage_found_total", {"found_by": "scrub"})
    return value or 0.0


# --- finding damage ----------------------------------------------------------------


def test_a_pass_finds_each_kind_of_damage_and_records_it(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    clean = add_archive(deps, os.urandom(3 * MIB + 5))
    first_mib = add_archive(deps, os.urandom(2 * MIB))
    later_mib = add_archive(deps, os.urandom(6 * MIB + 100), segment_mib=2)
    cut = add_archive(deps, os.urandom(3 * MIB))
    zeroed = add_archive(deps, os.urandom(5 * MIB))
    gone = add_archive(deps, os.urandom(1000))
    part = add_part(deps, os.urandom(2 * MIB + 7))
    flip_bit(path(deps, first_mib.keys[0]), 12345, bit=3)
    flip_bit(path(deps, later_mib.keys[2]), MIB + 17)  # the third segment's second MiB
    truncate(path(deps, cut.keys[0]), 2 * MIB + 1)
    zero_range(path(deps, zeroed.keys[0]), 4 * MIB + 10, 4096)
    path(deps, gone.keys[0]).unlink()
    flip_bit(path(deps, part.keys[0]), 2 * MIB + 3)
    before = found_by_scrub()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        report = anyio.run(Scrubber(deps).run_now)

    assert report.finished_at is not None
    assert report.blobs == 10  # the 6 MiB archive has four segments
    assert report.bytes == (3 * MIB + 5) + 2 * MIB + (6 * MIB + 100) + 8 * MIB + 1000 + 2 * MIB + 7
    damaged = {d.archive_id or d.upload_id: d for d in report.damage}
    want = {first_mib, later_mib, cut, zeroed, gone, part}
    assert set(damaged) == {s.owner for s in want}
    assert damaged[first_mib.owner].blob_key == first_mib.keys[0]
    assert "leaf 0 " in damaged[first_mib.owner].problem
    assert damaged[later_mib.owner].blob_key == later_mib.keys[2]
    assert "leaf 1 " in damaged[later_mib.owner].problem
    assert "leaf 4 " in damaged[zeroed.owner].problem
    assert "missing" in damaged[gone.owner].problem
    assert damaged[part.owner].upload_id == part.owner
    assert damaged[part.owner].archive_id is None
    for record in report.damage:
        assert (record.vault, record.found_by, record.quarantined) == (ARN, "scrub", True)
        assert record.repair_note == NO_REPLICA_NOTE
        assert record.repaired_at is None
    assert sorted(records(deps), key=lambda r: r.id) == sorted(report.damage, key=lambda r: r.id)
    assert not quarantined(deps, clean.owner)
    assert all(quarantined(deps, s.owner) for s in want - {part})
    # One ERROR line per finding, naming the archive (or upload), vault and blob.
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 6
    for stored in want:
        (line,) = [m for m in lines if stored.owner in m]
        assert ARN in line
        assert damaged[stored.owner].blob_key in line
    assert found_by_scrub() - before == 6
    done = state(deps)
    assert (done.passes_completed, done.last_blobs, done.last_damage) == (1, 10, 6)
    assert (done.pass_started_at, done.cursor_key, done.lease_holder) == (None, None, None)


def test_damage_found_again_stays_one_record_and_a_restored_blob_closes_it(
    deps: Deps, clock: ManualClock
) -> None:
    data = os.urandom(2 * MIB)
    stored = add_archive(deps, data)
    flip_bit(path(deps, stored.keys[0]), MIB + 1)
    (first,) = anyio.run(Scrubber(deps).run_now).damage
    clock.advance(timedelta(hours=1))
    (again,) = anyio.run(Scrubber(deps).run_now).damage
    assert again.id == first.id
    assert again.last_seen_at == first.found_at + timedelta(hours=1)
    assert len(records(deps)) == 1
    # The operator puts the blob's bytes back: the next pass closes the record.
    flip_bit(path(deps, stored.keys[0]), MIB + 1)
    assert anyio.run(Scrubber(deps).run_now).damage == []
    (closed,) = records(deps, repaired=True)
    assert (closed.id, closed.repair_note) == (first.id, RESTORED_NOTE)
    assert not quarantined(deps, stored.owner)


# --- resuming, the lease --------------------------------------------------------------


def test_a_stopped_pass_resumes_from_its_cursor(deps: Deps) -> None:
    stored = [add_archive(deps, os.urandom(MIB + i)) for i in range(5)]
    order = sorted(stored, key=lambda s: s.keys[0])
    first_run = anyio.run(lambda: Scrubber(deps, batch=2).run_now(stop_after=2))
    assert (first_run.finished_at, first_run.blobs, first_run.damage) == (None, 2, [])
    paused = state(deps)
    assert paused.cursor_key == order[1].keys[0]
    assert (paused.blobs_done, paused.lease_holder) == (2, None)  # released for the next
    # Damage behind the cursor (verified already) and ahead of it.
    flip_bit(path(deps, order[0].keys[0]), 5)
    flip_bit(path(deps, order[3].keys[0]), 5)

    # A restarted process continues the same pass: it verifies the other three.
    second = anyio.run(lambda: Scrubber(deps).run_pass(fresh=False, paced=False))
    assert second is not None
    assert (second.resumed_from, second.blobs, second.started_at) == (
        order[1].keys[0],
        3,
        paused.pass_started_at,
    )
    assert [d.archive_id for d in second.damage] == [order[3].owner]
    done = state(deps)
    assert (done.passes_completed, done.last_blobs, done.last_damage) == (1, 5, 1)
    assert done.last_started_at == paused.pass_started_at
    # The next full pass finds the damage behind the old cursor too.
    full = anyio.run(Scrubber(deps).run_now)
    assert {d.archive_id for d in full.damage} == {order[0].owner, order[3].owner}


def test_one_of_two_scrubbers_scrubs_and_the_other_takes_over_after_expiry(
    deps: Deps, clock: ManualClock
) -> None:
    stored = [add_archive(deps, os.urandom(MIB)) for _ in range(3)]
    a = Scrubber(deps, rate=1e9, lease=timedelta(seconds=60))
    b = Scrubber(deps, rate=1e9, lease=timedelta(seconds=60))

    async def both() -> list[object]:
        outcomes: list[object] = []

        async def run(scrubber: Scrubber) -> None:
            try:
                outcomes.append(await scrubber.run_now())
            except ScrubBusy as exc:
                outcomes.append(exc)

        # A takes the lease and "dies" mid-pass: it never releases it.
        await a.ledger.take()
        await a.ledger.start_pass()
        async with anyio.create_task_group() as group:
            group.start_soon(run, b)
            group.start_soon(run, b)
        return outcomes

    outcomes = anyio.run(both)
    assert all(isinstance(o, ScrubBusy) for o in outcomes)
    assert "another process is scrubbing" in str(outcomes[0])
    assert a.holder in str(outcomes[0])
    assert anyio.run(b.run_due) is None  # the background step skips too
    assert state(deps).blobs_done == 0
    flip_bit(path(deps, stored[0].keys[0]), 1)
    # After the expiry the other scrubber continues A's pass, and A is fenced off.
    clock.advance(timedelta(seconds=61))
    report = anyio.run(b.run_due)
    assert report is not None
    assert report.finished_at is not None
    assert report.blobs == 3
    assert [d.archive_id for d in report.damage] == [stored[0].owner]
    with pytest.raises(LeaseLost):
        anyio.run(lambda: a.ledger.save(a.ledger.state))


def test_two_scrubbers_starting_together_run_one_pass(deps: Deps) -> None:
    for _ in range(4):
        add_archive(deps, os.urandom(MIB))
    scrubbers = [Scrubber(deps), Scrubber(deps)]
    results: list[object] = []

    async def run(scrubber: Scrubber) -> None:
        try:
            results.append(await scrubber.run_now())
        except ScrubBusy as exc:
            results.append(exc)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for scrubber in scrubbers:
                group.start_soon(run, scrubber)

    anyio.run(main)
    reports = [r for r in results if not isinstance(r, ScrubBusy)]
    assert len(results) == 2
    assert len(reports) == 1
    assert state(deps).passes_completed == 1


# --- the schedule and the rate -------------------------------------------------------------


def test_background_passes_follow_the_interval_at_the_rate(deps: Deps, clock: ManualClock) -> None:
    for _ in range(3):
        add_archive(deps, os.urandom(4 * MIB))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the ManualClock moves instead
        slept.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    day = timedelta(days=1)
    scrubber = Scrubber(deps, rate=MIB, interval=day, sleep=sleep)
    start = clock.now()
    first = anyio.run(scrubber.run_due)
    assert first is not None
    assert first.finished_at is not None
    assert first.bytes == 12 * MIB
    # 12 MiB at 1 MiB/s: 11 s of waiting (the first second's worth was in the bucket).
    assert sum(slept) == pytest.approx(11.0)
    assert anyio.run(scrubber.run_due) is None  # not due again yet
    clock.set(start + day - timedelta(seconds=1))
    assert anyio.run(scrubber.run_due) is None
    clock.set(start + day)
    again = anyio.run(scrubber.run_due)
    assert again is not None
    assert again.started_at == start + day
    assert state(deps).passes_completed == 2
    off = Scrubber(deps, rate=0, interval=timedelta(seconds=1), sleep=sleep)
    clock.advance(2 * day)
    assert anyio.run(off.run_due) is None  # rate 0: no background scrubbing


# --- repair from a second copy ------------------------------------------------------------


class TwoCopies(FilesystemBlobStore):
    """Test scaffolding: a BlobStore over a primary filesystem store (reads,
    listing) that also keeps a replica filesystem store, with the BlobCopies
    members the scrubber repairs through. The real replicated store is
    storage/blobs/replicated.py."""

    def __init__(self, primary: Path, replica: Path) -> None:
        super().__init__(primary)
        self.replica = FilesystemBlobStore(replica)

    @property
    def copies(self) -> tuple[FilesystemBlobStore, FilesystemBlobStore]:
        return (self, self.replica)

    def restore(self, key: str, source: int) -> None:
        good, other = self.copies[source], self.copies[1 - source]
        other.delete(key)
        reader = good.open(key)
        try:
            put_blob(other, key, reader)
        finally:
            reader.close()


@pytest.fixture
def replicated(metadata_store: SqlMetadataStore, tmp_path: Path, clock: ManualClock) -> Deps:
    blobs = TwoCopies(tmp_path / "primary", tmp_path / "replica")
    return Deps(store=metadata_store, blobs=blobs, clock=clock, timing=PROFILES["instant"])


def add_replicated(deps: Deps, data: bytes) -> Stored:
    stored = add_archive(deps, data)
    assert isinstance(deps.blobs, TwoCopies)
    put_blob(deps.blobs.replica, stored.keys[0], [data])
    return stored


def test_a_damaged_or_missing_copy_is_restored_from_the_good_one(replicated: Deps) -> None:
    blobs = replicated.blobs
    assert isinstance(blobs, TwoCopies)
    rotten_primary = add_replicated(replicated, os.urandom(3 * MIB))
    lost_replica = add_replicated(replicated, os.urandom(MIB + 1))
    fine = add_replicated(replicated, os.urandom(10))
    flip_bit(blob_file(blobs.root, rotten_primary.keys[0]), 2 * MIB + 9)
    blob_file(blobs.replica.root, lost_replica.keys[0]).unlink()

    report = anyio.run(Scrubber(replicated).run_now)
    found = {d.archive_id: d for d in report.damage}
    assert set(found) == {rotten_primary.owner, lost_replica.owner}
    assert report.repaired == 2
    primary = found[rotten_primary.owner]
    assert primary.problem.startswith("primary copy: ")
    assert primary.repair_note == "restored the primary copy from the replica copy and verified it"
    assert found[lost_replica.owner].problem.startswith("replica copy: ")
    assert "missing" in found[lost_replica.owner].problem
    for record in records(replicated, repaired=True):
        assert record.repaired_at is not None
        assert not record.quarantined
    assert records(replicated, repaired=False) == []
    assert not quarantined(replicated, rotten_primary.owner)
    # Both copies verify again, byte for byte equal.
    for stored in (rotten_primary, lost_replica, fine):
        (key,) = stored.keys
        assert (
            blob_file(blobs.root, key).read_bytes()
            == blob_file(blobs.replica.root, key).read_bytes()
        )
    assert anyio.run(Scrubber(replicated).run_now).damage == []


def test_both_copies_damaged_quarantines_the_archive(replicated: Deps) -> None:
    blobs = replicated.blobs
    assert isinstance(blobs, TwoCopies)
    stored = add_replicated(replicated, os.urandom(2 * MIB))
    flip_bit(blob_file(blobs.root, stored.keys[0]), 7)
    truncate(blob_file(blobs.replica.root, stored.keys[0]), MIB)
    (record,) = anyio.run(Scrubber(replicated).run_now).damage
    assert record.quarantined
    assert record.repaired_at is None
    assert record.repair_note == BOTH_DAMAGED_NOTE
    assert "primary copy: " in record.problem
    assert "replica copy: " in record.problem
    assert quarantined(replicated, stored.owner)


def test_a_blob_collected_during_the_pass_is_not_damage(deps: Deps) -> None:
    first, second = sorted(
        (add_archive(deps, os.urandom(MIB)) for _ in range(2)), key=lambda s: s.keys[0]
    )
    deleted: list[str] = []

    def delete_second(_n: int) -> None:
        """While the first blob is verified (its page read already), the
        second archive is deleted and its blob collected."""
        if deleted:
            return
        with deps.store.transaction() as tx:
            tx.remove_archive(second.owner, 2, deps.clock.now())
        deps.blobs.delete(second.keys[0])
        deleted.append(second.owner)

    report = anyio.run(Scrubber(deps, progress=delete_second).run_now)
    assert deleted == [second.owner]
    assert report.blobs == 2  # it was on the page, and read: missing
    assert report.damage == []
    assert records(deps) == []
    assert not quarantined(deps, first.owner)

"""A scrub pass: every stored blob verified, damage recorded, copies repaired.

The pass walks the scrub targets (live archives' segments, active uploads'
parts) in blob-key order from the cursor in the scrub_state row, verifies each
blob (verify.py; each copy of a replicated store, repair.py), and records what
it finds through domain/damage.py. Progress is checkpointed every `batch`
blobs and whenever the lease needs renewing, so a process that stops loses at
most one batch of work, and whoever takes the lease next continues from the
cursor. Blobs added behind the cursor during a pass wait for the next one.

Blob reads run on worker threads, one step at a time; a paced pass sleeps
between steps as the token bucket says (pacing.py), so it reads at most
`rate` bytes per second. `run_now` (the admin API and `openglacier scrub
now`) runs an unpaced pass from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio

from openglacier.clock import iso_ms
from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.domain.scrub import repair
from openglacier.domain.scrub.pacing import TokenBucket, pass_due, step_bytes
from openglacier.domain.scrub.state import LEASE, LeaseLost, Ledger, ScrubBusy, new_holder
from openglacier.domain.scrub.verify import CopyCheck
from openglacier.metrics import (
    SCRUB_BLOBS,
    SCRUB_BYTES,
    SCRUB_LAST_PASS_FINISHED,
    SCRUB_PASS_BYTES,
    SCRUB_PASS_BYTES_TOTAL,
    SCRUB_PASSES,
)
from openglacier.ports import BlobCopies, BlobStore, DamageRecord, MetadataTx, ScrubTarget
from openglacier.records import UploadState

log = logging.getLogger("openglacier.scrub")
T = TypeVar("T")
MIB = 1 << 20
CHECKPOINT_BYTES = 256 * MIB


@dataclass
class PassReport:
    """What one run of a pass did (a resumed pass counts only its own work)."""

    started_at: datetime  # when the pass began (earlier than this run if resumed)
    resumed_from: str | None  # the cursor this run began after
    finished_at: datetime | None = None  # None: stopped before the end
    blobs: int = 0
    bytes: int = 0
    damage: list[DamageRecord] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return sum(1 for d in self.damage if d.repaired_at is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": iso_ms(self.started_at),
            "finished_at": iso_ms(self.finished_at) if self.finished_at else None,
            "resumed_from": self.resumed_from,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "damage_found": len(self.damage),
            "repaired": self.repaired,
            "damage": [damage_dict(d) for d in self.damage],
        }


def damage_dict(record: DamageRecord) -> dict[str, Any]:
    """A damage record as the admin API and the CLI show it."""
    return {
        "id": record.id,
        "ArchiveId": record.archive_id,
        "UploadId": record.upload_id,
        "VaultARN": record.vault,
        "blob": record.blob_key,
        "problem": record.problem,
        "found_by": record.found_by,
        "found_at": iso_ms(record.found_at),
        "last_seen_at": iso_ms(record.last_seen_at),
        "quarantined": record.quarantined,
        "repaired_at": iso_ms(record.repaired_at) if record.repaired_at else None,
        "repair_note": record.repair_note,
    }


class Scrubber:
    """One process's scrubber. `rate`: bytes per second of a paced pass (0:
    background scrubbing off); `interval`: between the starts of passes."""

    def __init__(
        self,
        deps: Deps,
        *,
        rate: float = 0.0,
        interval: timedelta = timedelta(days=30),
        lease: timedelta = LEASE,
        batch: int = 100,
        holder: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.deps = deps
        self.rate = rate
        self.interval = interval
        self.batch = batch
        self.sleep = sleep
        self.progress = progress
        self.ledger = Ledger(deps, holder or new_holder(), lease)
        self._bucket: TokenBucket | None = None
        self._vaults: dict[int, str] = {}

    @property
    def holder(self) -> str:
        return self.ledger.holder

    # --- entry points -----------------------------------------------------------------
    async def run_due(self) -> PassReport | None:
        """The background step: a paced pass if one is due and no other
        process holds the lease (then None)."""
        if self.rate <= 0:
            return None
        state = await self.deps.in_read_tx(lambda tx: tx.scrub_state())
        if not pass_due(state, self.deps.clock.now(), self.interval):
            return None
        try:
            return await self.run_pass(fresh=False, paced=True)
        except ScrubBusy:
            log.debug("scrub pass due, but another process holds the lease")
            return None

    async def run_now(self, *, stop_after: int | None = None) -> PassReport:
        """A full pass from the start, unpaced; ScrubBusy if another process scrubs."""
        report = await self.run_pass(fresh=True, paced=False, stop_after=stop_after)
        assert report is not None  # a fresh pass is always due
        return report

    async def run_pass(
        self, *, fresh: bool, paced: bool, stop_after: int | None = None
    ) -> PassReport | None:
        """Continue the pass in progress, or start one if due (None if not);
        `fresh`: a new pass now, whatever is in progress. Under the lease
        (ScrubBusy if another process holds it). After `stop_after` blobs the
        run stops, leaving its cursor to whoever continues."""
        if await self.ledger.take() is None:
            raise ScrubBusy(await self.deps.in_read_tx(lambda tx: tx.scrub_state()))
        if not fresh and not pass_due(self.ledger.state, self.deps.clock.now(), self.interval):
            await self.ledger.release()  # another process finished it meanwhile
            return None
        if fresh or self.ledger.state.pass_started_at is None:
            await self.ledger.start_pass()
        self._bucket = TokenBucket(self.rate, self.deps.clock) if paced and self.rate > 0 else None
        return await self._run(stop_after)

    async def loop(self, poll_seconds: float) -> None:
        """Every serve process runs this; the lease keeps it to one at a time."""
        while True:
            try:
                report = await self.run_due()
                if report is not None and report.finished_at is not None and report.blobs:
                    log.info("scrub pass finished: %s", _summary(report))
            except LeaseLost:
                log.warning("scrub lease taken over by another process; it continues the pass")
            except Exception:
                log.exception("scrub pass stopped; it resumes from its cursor later")
            await anyio.sleep(poll_seconds)

    # --- the pass -----------------------------------------------------------------------
    async def _run(self, stop_after: int | None) -> PassReport:
        state = self.ledger.state
        assert state.pass_started_at is not None
        report = PassReport(state.pass_started_at, state.cursor_key)
        self._vaults.clear()
        total = await self._read(lambda tx: tx.scrub_census())
        SCRUB_PASS_BYTES_TOTAL.set(total[1])
        open_records = await self._open_records()
        unsaved = [0, 0]  # blobs, bytes since the last checkpoint
        try:
            while True:
                cursor = self.ledger.state.cursor_key
                page = await self._read(partial(_targets, after=cursor, limit=self.batch))
                if not page:
                    break
                for target in page:
                    found = await self._scrub(target, open_records.get(target.key))
                    if found is not None:
                        report.damage.append(found)
                    self._advance(target, found, report, unsaved)
                    if unsaved[0] >= self.batch or unsaved[1] >= CHECKPOINT_BYTES:
                        await self._checkpoint(unsaved)
                    if stop_after is not None and report.blobs >= stop_after:
                        await self._checkpoint(unsaved)
                        await self.ledger.release()
                        return report
            await self._checkpoint(unsaved)
            finished = await self.ledger.finish_pass()
        except LeaseLost:
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop_quietly(unsaved)
            raise
        report.finished_at = finished.last_finished_at
        SCRUB_PASSES.inc()
        SCRUB_PASS_BYTES.set(0)
        if report.finished_at is not None:
            SCRUB_LAST_PASS_FINISHED.set(report.finished_at.timestamp())
        return report

    def _advance(
        self,
        target: ScrubTarget,
        found: DamageRecord | None,
        report: PassReport,
        unsaved: list[int],
    ) -> None:
        s = self.ledger.state
        self.ledger.state = replace(
            s,
            cursor_key=target.key,
            blobs_done=s.blobs_done + 1,
            bytes_done=s.bytes_done + target.size,
            damage_found=s.damage_found + (found is not None),
        )
        report.blobs += 1
        report.bytes += target.size
        unsaved[0] += 1
        unsaved[1] += target.size
        SCRUB_BLOBS.inc()
        SCRUB_PASS_BYTES.set(self.ledger.state.bytes_done)

    async def _checkpoint(self, unsaved: list[int]) -> None:
        await self.ledger.save(self.ledger.state)
        unsaved[0] = unsaved[1] = 0

    async def _stop_quietly(self, unsaved: list[int]) -> None:
        """After a failure: keep what was verified, let another process go on."""
        try:
            await self._checkpoint(unsaved)
            await self.ledger.release()
        except Exception:
            log.warning("could not save the scrub cursor; the lease expires by itself")

    # --- one blob ------------------------------------------------------------------------
    async def _scrub(self, target: ScrubTarget, known: DamageRecord | None) -> DamageRecord | None:
        """Verify (and repair) one blob; the damage record if it is damaged."""
        blobs = self.deps.blobs
        check = partial(self._check_copy, target=target)
        if isinstance(blobs, BlobCopies):
            restore = partial(self._restore, blobs, target.key)
            verdict = await repair.replicated(blobs, check, restore)
        else:
            verdict = await repair.single(blobs, check)
        if verdict.problem is None:
            if known is not None:
                now = self.deps.clock.now()
                await self.deps.in_tx(partial(_close, record=known, now=now))
            return None
        return await self._record(target, verdict)

    async def _check_copy(
        self, blobs: BlobStore, counted: bool, *, target: ScrubTarget
    ) -> str | None:
        check = CopyCheck(blobs, target)
        size = step_bytes(self.rate if self._bucket else 0)
        try:
            while not check.done:
                read = await self.deps.blocking(partial(check.step, size))
                if self._bucket is not None and read:
                    # Charged after the read, for what was read: the pause
                    # comes before the next read.
                    await self.sleep(self._bucket.reserve(read))
                SCRUB_BYTES.inc(read)
                if counted and self.progress is not None:
                    self.progress(read)
                if self.ledger.renewal_due():
                    await self.ledger.save(self.ledger.state)
        finally:
            check.close()
        if counted and self.progress is not None and check.read < target.size:
            self.progress(target.size - check.read)  # a damaged blob counts as done
        return check.problem

    async def _restore(self, blobs: BlobCopies, key: str, source: int) -> None:
        await self.deps.blocking(partial(blobs.restore, key, source))

    async def _record(self, target: ScrubTarget, verdict: repair.Verdict) -> DamageRecord | None:
        """Record the finding, unless the blob is no longer stored data (its
        archive deleted, its upload ended since the page was read: a blob
        collected meanwhile is missing, not damaged)."""
        assert verdict.problem is not None
        vault = await self._vault_arn(target.vault_id)
        now = self.deps.clock.now()
        finding = damage.finding(
            blob_key=target.key,
            problem=verdict.problem,
            found_by="scrub",
            vault=vault,
            now=now,
            archive_id=target.archive_id,
            upload_id=target.upload_id,
            quarantined=verdict.quarantined,
            note=verdict.note,
        )

        def store(tx: MetadataTx) -> DamageRecord | None:
            if not _still_stored(tx, target):
                return None
            stored = damage.found(tx, finding)
            if verdict.repaired:
                assert verdict.note is not None
                tx.close_damage(stored.id, now, verdict.note)
                return replace(stored, repaired_at=now, quarantined=False, repair_note=verdict.note)
            if verdict.note is not None and stored.repair_note != verdict.note:
                tx.note_damage(stored.id, verdict.note)
                return replace(stored, repair_note=verdict.note)
            return stored

        return await self.deps.in_tx(store)

    async def _vault_arn(self, vault_id: int) -> str:
        if vault_id not in self._vaults:
            vault = await self._read(lambda tx: tx.get_vault_by_id(vault_id))
            self._vaults[vault_id] = (
                self.deps.vault_arn(vault.region, vault.account_id, vault.name)
                if vault is not None
                else f"#{vault_id}"
            )
        return self._vaults[vault_id]

    async def _open_records(self) -> dict[str, DamageRecord]:
        """Open records by blob key: a blob that verifies again closes its own."""
        records: dict[str, DamageRecord] = {}
        after: int | None = None
        while page := await self._read(partial(_open_page, after=after)):
            for record in page:
                records.setdefault(record.blob_key, record)
            after = page[-1].id
        return records

    async def _read(self, fn: Callable[[MetadataTx], T]) -> T:
        """A read snapshot on a worker thread: pages of leaf digests can be
        megabytes, too much for the event loop even on SQLite."""
        return await self.deps.blocking(partial(_in_snapshot, self.deps, fn))


def _still_stored(tx: MetadataTx, target: ScrubTarget) -> bool:
    if target.archive_id is not None:
        archive = tx.get_archive(target.archive_id)
        if archive is None or archive.removed_seq is not None:
            return False
        return any(s.blob_key == target.key for s in tx.get_segments(target.archive_id))
    assert target.upload_id is not None
    upload = tx.get_upload(target.upload_id)
    return upload is not None and upload.state is UploadState.ACTIVE


def _close(tx: MetadataTx, *, record: DamageRecord, now: datetime) -> None:
    tx.close_damage(record.id, now, repair.RESTORED_NOTE)


def _targets(tx: MetadataTx, *, after: str | None, limit: int) -> list[ScrubTarget]:
    return tx.scrub_targets(after, limit)


def _open_page(tx: MetadataTx, *, after: int | None) -> list[DamageRecord]:
    return tx.list_damage(repaired=False, after_id=after, limit=1000)


def _in_snapshot(deps: Deps, fn: Callable[[MetadataTx], T]) -> T:
    with deps.store.transaction(readonly=True) as tx:
        return fn(tx)


def _summary(report: PassReport) -> str:
    return (
        f"{report.blobs} blobs, {report.bytes} bytes verified, {len(report.damage)} damaged "
        f"({report.repaired} repaired)"
    )

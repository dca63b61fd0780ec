"""Periodic housekeeping: inventories, expiry of idle uploads, jobs and vault lock ids,
blob collection, the usage report's daily rollup.

Runs in every server process (each step is idempotent and transactional, so
several API nodes may run it at once). Time comes from the injected clock, so
with a ManualClock nothing happens until the admin API advances time and asks
for a pass.

Orphan blobs (domain/orphans.py) are looked for on a process's first pass,
which collects what crashes before this start left once it is old enough, and
then at most once per `ORPHAN_SWEEP_INTERVAL` of the injected clock: the sweep
lists every blob, which a pass every second must not do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial

import anyio
import anyio.to_thread

from openglacier.domain.context import Deps
from openglacier.domain.inventory import InventoryService
from openglacier.domain.orphans import collect_orphans
from openglacier.metrics.stats import publish as publish_stats
from openglacier.metrics.usage import USAGE
from openglacier.ports import MetadataTx, StoreStats
from openglacier.records import UploadState

log = logging.getLogger("openglacier.maintenance")
BATCH = 200
# An orphan lives at most the minimum age plus this; a sweep lists every blob.
ORPHAN_SWEEP_INTERVAL = timedelta(hours=1)
# Passes run every second by default; the gauges' reads (a group-by over the
# vaults and the jobs) need not: a scrape every 15 s or more is usual.
STATS_INTERVAL = 10.0


@dataclass(frozen=True)
class MaintenanceReport:
    inventories: int
    uploads_expired: int
    uploads_purged: int
    jobs_expired: int
    locks_expired: int
    blobs_deleted: int
    orphans_deleted: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Maintenance:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.inventory = InventoryService(deps)
        self._orphans_swept_at: datetime | None = None
        self._orphan_lock = asyncio.Lock()

    async def run_once(self, *, stats: bool = True) -> MaintenanceReport:
        """One pass; `stats`: refresh the metrics' stored, upload and job gauges
        too (the loop does so every STATS_INTERVAL, an admin pass always)."""
        inventories = await self.inventory.run_due()
        expired = await self._expire_uploads()
        purged = await self._purge_ended_uploads()
        jobs = await self._expire_jobs()
        # Delivered notifications are kept as long as jobs, for operators' eyes.
        cutoff = self.deps.clock.now() - self.deps.timing.job_retention
        await self.deps.in_tx(lambda tx: tx.purge_delivered_notifications(cutoff))
        # Expired InProgress locks already count as absent (VaultLock.in_force);
        # this only removes their rows.
        now = self.deps.clock.now()
        locks = await self.deps.in_tx(lambda tx: tx.purge_expired_locks(now))
        blobs = await self.deps.collect_garbage()
        orphans = await self._collect_orphans()
        await self._flush_usage(snapshot=stats)
        if stats:
            await self._refresh_stats()
        return MaintenanceReport(inventories, expired, purged, jobs, locks, blobs, orphans)

    async def _flush_usage(self, *, snapshot: bool) -> None:
        """Add this process's usage counts to the daily rollup (additive, so every
        process's flushes add up) and, with `snapshot`, set today's stored archives
        and bytes per vault from the vault counters. A failed flush keeps its counts."""
        rows = USAGE.drain()
        if not rows and not snapshot:
            return
        day = self.deps.clock.now().date().isoformat()

        def write(tx: MetadataTx) -> None:
            tx.add_usage(rows)
            if snapshot:
                tx.snapshot_usage(day)

        try:
            await self.deps.in_tx(write)
        except BaseException:
            USAGE.restore(rows)
            raise

    async def _refresh_stats(self) -> None:
        """The stored, upload and job gauges (metrics/stats.py): read here, once a
        pass, so a scrape never queries the metadata store."""
        stats = await self.deps.blocking(self._read_stats)
        publish_stats(stats, self.deps.clock.now())

    def _read_stats(self) -> StoreStats:
        # A snapshot on a worker thread: no writer lock (SQLite), and a group-by
        # over the jobs is not a read to run on the event loop.
        with self.deps.store.transaction(readonly=True) as tx:
            return tx.store_stats()

    async def _collect_orphans(self) -> int:
        """The orphan sweep, if due. One sweep at a time in a process: a pass
        that comes while another sweeps (the loop and an admin request) waits
        for it, so when any pass returns no sweep is half done, and the last
        one started less than ORPHAN_SWEEP_INTERVAL before it checked."""
        async with self._orphan_lock:
            now = self.deps.clock.now()
            last = self._orphans_swept_at
            if last is not None and now - last < ORPHAN_SWEEP_INTERVAL:
                return 0
            deleted = await collect_orphans(self.deps)
            await self._sweep_temp()
            self._orphans_swept_at = now  # not on failure: due again next pass
            return deleted

    async def _sweep_temp(self) -> None:
        """Writes of dead writers (temp files, S3 multipart uploads of a node
        killed mid-upload) are dropped at each start and with every orphan
        sweep, so a long-running deployment does not keep paying for them."""
        sweep = getattr(self.deps.blobs, "sweep_temp", None)
        if sweep is not None:
            await anyio.to_thread.run_sync(partial(sweep, older_than=self.deps.stale_temp_seconds))

    async def _expire_jobs(self) -> int:
        """Spec 4.2 [R]: completed jobs and their output go after the retention."""
        cutoff = self.deps.clock.now() - self.deps.timing.job_retention
        total = 0
        while True:
            ids = await self.deps.in_tx(lambda tx: tx.expired_jobs(cutoff, BATCH))
            now = self.deps.clock.now()
            for job_id in ids:
                await self.deps.in_tx(partial(_delete_job, job_id=job_id, now=now))
            total += len(ids)
            if len(ids) < BATCH:
                return total

    async def _expire_uploads(self) -> int:
        """Spec 2.20 [R]: an upload idle for the profile's expiry is aborted."""
        idle_since = self.deps.clock.now() - self.deps.timing.upload_expiry
        total = 0
        while True:
            ids = await self.deps.in_tx(lambda tx: tx.inactive_uploads(idle_since, BATCH))
            for upload_id in ids:
                total += await self.deps.in_tx(
                    partial(self._expire, upload_id=upload_id, idle_since=idle_since)
                )
            if len(ids) < BATCH:
                return total

    def _expire(self, tx: MetadataTx, *, upload_id: str, idle_since: datetime) -> bool:
        """Re-checked under the row lock: a part may have arrived since the scan."""
        upload = tx.get_upload(upload_id, for_update=True)
        if upload is None or upload.state != UploadState.ACTIVE:
            return False
        if upload.last_activity_at > idle_since:
            return False
        tx.end_upload(upload_id, UploadState.ABORTED, self.deps.clock.now())
        return True

    async def _purge_ended_uploads(self) -> int:
        """Completed/aborted records answer retries for a while (spec 2.22, 2.23)."""
        cutoff = self.deps.clock.now() - self.deps.timing.completed_upload_retention
        return await self.deps.in_tx(lambda tx: tx.purge_ended_uploads(cutoff))

    async def loop(self, interval: float) -> None:
        try:
            await self._passes(interval)
        except asyncio.CancelledError:
            # A stop (SIGTERM, lifespan shutdown) flushes the usage counts once
            # more, so only a crash loses what was counted since the last pass.
            with contextlib.suppress(Exception):
                await self._flush_usage(snapshot=False)
            raise

    async def _passes(self, interval: float) -> None:
        stats_due = 0.0
        while True:
            try:
                # Monotonic: the gauges age in real time whatever the service clock does.
                stats = time.monotonic() >= stats_due
                report = await self.run_once(stats=stats)
                if stats:
                    stats_due = time.monotonic() + STATS_INTERVAL
                if any(report.as_dict().values()):
                    log.info("maintenance: %s", report.as_dict())
            except Exception:
                log.exception("maintenance pass failed; retrying next interval")
            await anyio.sleep(interval)


def _delete_job(tx: MetadataTx, *, job_id: str, now: datetime) -> None:
    tx.delete_job(job_id, now)

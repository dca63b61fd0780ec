"""What the metrics' stored, upload and job gauges show (`ports.StoreStats`).

Read by maintenance every few seconds (jobs/maintenance.py), never per
scrape. Vaults keep live archive counts and sizes on the write path, so the
per-account sums read the vaults table, not the archives; uploads are counted
through their (state, activity) index; jobs are bounded by their expiry.
"""

from __future__ import annotations

from sqlalchemy import func, select

from openglacier.ports import StoreStats
from openglacier.records import JobStatus, UploadState
from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import jobs, uploads, vaults


class StatsOps(TxBase):
    def store_stats(self) -> StoreStats:
        stored = self._rows(
            select(
                vaults.c.account_id, func.sum(vaults.c.live_count), func.sum(vaults.c.live_size)
            ).group_by(vaults.c.account_id)
        )
        open_uploads = self._scalar(
            select(func.count()).where(uploads.c.state == UploadState.ACTIVE.value)
        )
        counts = self._rows(
            select(jobs.c.action, jobs.c.tier, jobs.c.status, func.count()).group_by(
                jobs.c.action, jobs.c.tier, jobs.c.status
            )
        )
        # MIN keeps the column's type, so the times come back aware, as stored.
        oldest = self._rows(
            select(jobs.c.action, jobs.c.tier, func.min(jobs.c.created_at))
            .where(jobs.c.status == JobStatus.IN_PROGRESS.value)
            .group_by(jobs.c.action, jobs.c.tier)
        )
        scrub = self.scrub_state()  # type: ignore[attr-defined]  # DamageOps, same tx
        return StoreStats(
            archives={r[0]: int(r[1] or 0) for r in stored},
            bytes={r[0]: int(r[2] or 0) for r in stored},
            uploads_in_progress=int(open_uploads or 0),
            jobs={(r[0], r[1] or "", r[2]): int(r[3]) for r in counts},
            oldest_in_progress={(r[0], r[1] or ""): r[2] for r in oldest},
            scrub_last_finished=scrub.last_finished_at if scrub is not None else None,
        )

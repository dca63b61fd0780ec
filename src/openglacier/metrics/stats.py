"""Publishing `ports.StoreStats` (read by maintenance) to the gauges.

Series of accounts and job kinds that were published before and are gone now
are set to 0 rather than left at their last value.
"""

from __future__ import annotations

from datetime import datetime

from openglacier.metrics import (
    JOB_QUEUE_AGE,
    JOBS,
    SCRUB_LAST_PASS_FINISHED,
    STATS_REFRESHED,
    STORED_ARCHIVES,
    STORED_BYTES,
    UPLOADS_IN_PROGRESS,
)
from openglacier.ports import StoreStats

_seen_accounts: set[str] = set()
_seen_jobs: set[tuple[str, str, str]] = set()
_seen_queues: set[tuple[str, str]] = set()


def publish(stats: StoreStats, now: datetime) -> None:
    for account in _seen_accounts - stats.archives.keys():
        STORED_ARCHIVES.labels(account).set(0)
        STORED_BYTES.labels(account).set(0)
    for account, count in stats.archives.items():
        STORED_ARCHIVES.labels(account).set(count)
        STORED_BYTES.labels(account).set(stats.bytes.get(account, 0))
    _seen_accounts.update(stats.archives)
    UPLOADS_IN_PROGRESS.set(stats.uploads_in_progress)
    for key in _seen_jobs - stats.jobs.keys():
        JOBS.labels(*key).set(0)
    for key, count in stats.jobs.items():
        JOBS.labels(*key).set(count)
    _seen_jobs.update(stats.jobs)
    for queue in _seen_queues - stats.oldest_in_progress.keys():
        JOB_QUEUE_AGE.labels(*queue).set(0)
    for queue, created in stats.oldest_in_progress.items():
        JOB_QUEUE_AGE.labels(*queue).set(max(0.0, (now - created).total_seconds()))
    _seen_queues.update(stats.oldest_in_progress)
    if stats.scrub_last_finished is not None:
        # The persisted pass, whichever process ran it and across restarts.
        SCRUB_LAST_PASS_FINISHED.set(stats.scrub_last_finished.timestamp())
    STATS_REFRESHED.set(now.timestamp())

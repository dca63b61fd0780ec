"""Prometheus metrics of the process (prometheus-client).

Defined here, in one place, so every module counts into the same objects;
serving them is `metrics/exposition.py`'s business (and the API's front door,
`api/front.py`). Every metric is documented in docs/operations.md (Metrics).

Under `serve --processes N` each API process writes its values to files in a
per-deployment directory (prometheus-client's multiprocess mode, set up by
the supervisor) and a scrape sums the counters of all of them. Gauges say how
they combine across processes (`multiprocess_mode`): values read from the
metadata store by maintenance ("mostrecent": whichever process refreshed
last), the last finished scrub pass ("max").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No `_created` series: a creation time per label set doubles a scrape's size
# and no alert or dashboard here uses it.
disable_created_metrics()  # type: ignore[no-untyped-call]

P = ParamSpec("P")
R = TypeVar("R")
FOUND_BY = ("scrub", "read", "job", "audit")

DAMAGE_FOUND = Counter(
    "openglacier_damage_found",
    "Damaged or missing blobs found, by what found them: the scrubber (scrub), a "
    "download (read), a retrieval or select job (job) or the admin audit (audit).",
    ["found_by"],
)
for _who in FOUND_BY:
    DAMAGE_FOUND.labels(_who)  # every series exists from the start, at 0

SCRUB_BYTES = Counter(
    "openglacier_scrub_bytes_verified", "Stored bytes the scrubber verified against their hashes."
)
SCRUB_BLOBS = Counter("openglacier_scrub_blobs_verified", "Blobs the scrubber verified.")
SCRUB_PASSES = Counter("openglacier_scrub_passes_completed", "Scrub passes completed.")
SCRUB_PASS_BYTES = Gauge(
    "openglacier_scrub_pass_bytes_done",
    "Bytes verified so far in the scrub pass in progress.",
    multiprocess_mode="mostrecent",
)
SCRUB_PASS_BYTES_TOTAL = Gauge(
    "openglacier_scrub_pass_bytes_total",
    "Bytes the scrub pass in progress verifies in all (when it started).",
    multiprocess_mode="mostrecent",
)
SCRUB_LAST_PASS_FINISHED = Gauge(
    "openglacier_scrub_last_pass_finished_timestamp_seconds",
    "When this deployment last finished a scrub pass (Unix time; 0: not since start).",
    multiprocess_mode="max",
)

# --- requests (api/metering.py) ---------------------------------------------
REQUESTS = Counter(
    "openglacier_requests",
    "HTTP requests answered, by Glacier operation (or _admin, _unrouted) and status code.",
    ["operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "openglacier_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer, by operation.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECEIVED_BYTES = Counter(
    "openglacier_received_bytes", "Request body bytes received, by operation.", ["operation"]
)
SENT_BYTES = Counter(
    "openglacier_sent_bytes", "Response body bytes sent, by operation.", ["operation"]
)


_RequestSeries = tuple[Any, Any, Any, Any]  # requests, duration, received, sent children
_request_series: dict[tuple[str, int], _RequestSeries] = {}


def observe_request(operation: str, status: int, seconds: float, received: int, sent: int) -> None:
    """Called once per request: the label lookups (a lock and a dict each) are
    done once per (operation, status) and kept, which halves the cost."""
    series = _request_series.get((operation, status))
    if series is None:
        series = (
            REQUESTS.labels(operation, str(status)),
            REQUEST_SECONDS.labels(operation),
            RECEIVED_BYTES.labels(operation),
            SENT_BYTES.labels(operation),
        )
        _request_series[(operation, status)] = series
    requests, duration, received_bytes, sent_bytes = series
    requests.inc()
    duration.observe(seconds)
    if received:
        received_bytes.inc(received)
    if sent:
        sent_bytes.inc(sent)


# --- jobs and notifications ---------------------------------------------------
JOB_LEASES_LOST = Counter(
    "openglacier_job_leases_lost",
    "Jobs a runner was executing when another runner took them over (its lease had lapsed).",
)
NOTIFICATION_OUTCOMES = ("delivered", "retry", "failed")
NOTIFICATIONS = Counter(
    "openglacier_notification_deliveries",
    "Notification delivery attempts, by outcome: delivered, retry (failed, will be "
    "retried), failed (failed for the last time).",
    ["outcome"],
)
for _outcome in NOTIFICATION_OUTCOMES:
    NOTIFICATIONS.labels(_outcome)

# --- blob stores (storage/blobs/filesystem.py, s3.py) ----------------------------
BLOB_OPS = Counter(
    "openglacier_blob_operations",
    "Blob store calls, by store kind (file, s3) and operation (put, get, stat, delete, scan).",
    ["store", "op"],
)
BLOB_ERRORS = Counter(
    "openglacier_blob_errors",
    "Blob store calls that failed (a missing blob is an answer, not an error).",
    ["store", "op"],
)


def metered_blob_call(store: str, op: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates a blob store method: counts its calls, and those that raise. A
    missing blob (FileNotFoundError) is an answer, not an error."""
    calls, errors = BLOB_OPS.labels(store, op), BLOB_ERRORS.labels(store, op)

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def metered(*args: P.args, **kwargs: P.kwargs) -> R:
            calls.inc()
            try:
                return method(*args, **kwargs)
            except FileNotFoundError:
                raise
            except BaseException:
                errors.inc()
                raise

        return metered

    return wrap


# --- what is stored, refreshed by maintenance (jobs/maintenance.py) -------------
# Read from the metadata store once per maintenance pass, never per scrape:
# vaults keep live archive counts and sizes on the write path, so the per
# account sums read the (small) vaults table; jobs and uploads are bounded by
# their expiry.
STORED_ARCHIVES = Gauge(
    "openglacier_stored_archives",
    "Archives stored, per account (as of the last maintenance pass).",
    ["account"],
    multiprocess_mode="mostrecent",
)
STORED_BYTES = Gauge(
    "openglacier_stored_bytes",
    "Archive bytes stored, per account (as of the last maintenance pass).",
    ["account"],
    multiprocess_mode="mostrecent",
)
UPLOADS_IN_PROGRESS = Gauge(
    "openglacier_multipart_uploads_in_progress",
    "Multipart uploads initiated and neither completed, aborted nor expired.",
    multiprocess_mode="mostrecent",
)
JOBS = Gauge(
    "openglacier_jobs",
    "Jobs known (not yet expired), by type, tier and state (InProgress, Succeeded, Failed).",
    ["type", "tier", "state"],
    multiprocess_mode="mostrecent",
)
JOB_QUEUE_AGE = Gauge(
    "openglacier_job_queue_age_seconds",
    "Age of the oldest job still in progress, by type and tier (0: none in progress).",
    ["type", "tier"],
    multiprocess_mode="mostrecent",
)
STATS_REFRESHED = Gauge(
    "openglacier_stats_refreshed_timestamp_seconds",
    "When maintenance last refreshed the stored, upload and job gauges (Unix time).",
    multiprocess_mode="max",
)

"""Prometheus metrics of the process (prometheus-client's default registry).

Defined here, in one place, so every module counts into the same objects;
serving them (a /metrics endpoint) is the API's business, not this module's.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
    "openglacier_scrub_pass_bytes_done", "Bytes verified so far in the scrub pass in progress."
)
SCRUB_PASS_BYTES_TOTAL = Gauge(
    "openglacier_scrub_pass_bytes_total",
    "Bytes the scrub pass in progress verifies in all (when it started).",
)
SCRUB_LAST_PASS_FINISHED = Gauge(
    "openglacier_scrub_last_pass_finished_timestamp_seconds",
    "When this process last finished a scrub pass (Unix time).",
)

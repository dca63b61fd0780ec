"""Retrieval and inventory jobs: initiate, wait for, describe.

Works against any Glacier endpoint; nothing here assumes OpenGlacier's timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

TIERS = ("Expedited", "Standard", "Bulk")

# AWS's published completion times (S3 Glacier Flexible Retrieval); an
# OpenGlacier server's timing profile decides its own.
_EXPECTED = {
    "Expedited": "1-5 minutes",
    "Standard": "3-5 hours",
    "Bulk": "5-12 hours",
    "Inventory": "about 4 hours",
}


class JobFailed(Exception):
    """The job ended Failed; str() is the endpoint's StatusMessage."""

    def __init__(self, job_id: str, status_message: str) -> None:
        super().__init__(f"job {job_id} failed: {status_message or 'no reason given'}")
        self.job_id = job_id
        self.status_message = status_message


class JobTimeout(Exception):
    """wait_for_job's timeout passed before the job finished."""


def expected_completion(tier: str) -> str:
    """How long AWS takes for `tier` ("Inventory" for inventory jobs), as words."""
    return _EXPECTED.get(tier, "unknown")


def initiate_archive_retrieval(
    client: Any,
    account_id: str,
    vault: str,
    archive_id: str,
    tier: str,
    *,
    byte_range: str | None = None,
    description: str | None = None,
) -> str:
    """InitiateJob for an archive (or `byte_range` "first-last" of it); the job id."""
    params: dict[str, Any] = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": tier}
    if byte_range is not None:
        params["RetrievalByteRange"] = byte_range
    if description is not None:
        params["Description"] = description
    resp = client.initiate_job(accountId=account_id, vaultName=vault, jobParameters=params)
    return str(resp["jobId"])


def initiate_inventory(client: Any, account_id: str, vault: str, fmt: str = "JSON") -> str:
    """InitiateJob for the vault's latest inventory in `fmt` (JSON or CSV); the job id."""
    params = {"Type": "inventory-retrieval", "Format": fmt.upper()}
    resp = client.initiate_job(accountId=account_id, vaultName=vault, jobParameters=params)
    return str(resp["jobId"])


def describe_job(client: Any, account_id: str, vault: str, job_id: str) -> dict[str, Any]:
    resp = dict(client.describe_job(accountId=account_id, vaultName=vault, jobId=job_id))
    resp.pop("ResponseMetadata", None)
    return resp


def wait_for_job(
    client: Any,
    account_id: str,
    vault: str,
    job_id: str,
    *,
    poll_seconds: float,
    on_status: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll DescribeJob until the job is done; its description when Succeeded.

    The first intervals are short and double up to `poll_seconds`, so a job that
    finishes at once (OpenGlacier's instant profile, Expedited) is seen at once
    while a Bulk job is not polled more often than asked. `on_status` sees every
    description (for a status line). Raises JobFailed, or JobTimeout after `timeout`.
    """
    started = time.monotonic()
    interval = min(0.25, poll_seconds)
    while True:
        job = describe_job(client, account_id, vault, job_id)
        if on_status is not None:
            on_status(job)
        if job.get("StatusCode") == "Failed":
            raise JobFailed(job_id, str(job.get("StatusMessage") or ""))
        if job.get("StatusCode") == "Succeeded":
            return job
        if timeout is not None and time.monotonic() - started + interval > timeout:
            raise JobTimeout(f"job {job_id} not finished after {timeout:g} s")
        time.sleep(interval)  # polling the endpoint is what waiting for a job is
        interval = min(interval * 2, poll_seconds)


def output_size(job: dict[str, Any]) -> int:
    """Bytes of the job's output: the retrieved range, the archive, or the inventory."""
    if job.get("Action") == "InventoryRetrieval":
        return int(job.get("InventorySizeInBytes") or 0)
    byte_range = job.get("RetrievalByteRange")
    if byte_range:
        first, _, last = str(byte_range).partition("-")
        return int(last) - int(first) + 1
    return int(job.get("ArchiveSizeInBytes") or 0)


def list_jobs(client: Any, account_id: str, vault: str, **filters: str) -> Iterator[dict[str, Any]]:
    """Every job of the vault (all pages); `filters` as ListJobs takes them
    (`completed="true"`, `statuscode="Succeeded"`)."""
    marker: str | None = None
    while True:
        args: dict[str, Any] = {"accountId": account_id, "vaultName": vault, **filters}
        if marker:
            args["marker"] = marker
        resp = client.list_jobs(**args)
        yield from resp.get("JobList", [])
        marker = resp.get("Marker")
        if not marker:
            return


def _plain_inventory(job: dict[str, Any], fmt: str) -> bool:
    """An inventory job of the whole vault in `fmt` (no date range, limit or marker)."""
    params = job.get("InventoryRetrievalParameters") or {}
    partial = any(params.get(k) for k in ("StartDate", "EndDate", "Limit", "Marker"))
    return (
        job.get("Action") == "InventoryRetrieval"
        and str(params.get("Format", "")).upper() == fmt.upper()
        and not partial
    )


def find_inventory_job(
    client: Any, account_id: str, vault: str, fmt: str, since: str | None
) -> dict[str, Any] | None:
    """The newest whole-vault inventory job in `fmt` created at or after `since`
    (the vault's LastInventoryDate; its output is then the latest inventory) that
    succeeded or is still in progress: asking for another would only wait again."""
    best: dict[str, Any] | None = None
    for job in list_jobs(client, account_id, vault):
        if not _plain_inventory(job, fmt) or job.get("StatusCode") == "Failed":
            continue
        if since and str(job.get("CreationDate", "")) < since:
            continue
        if best is None or str(job.get("CreationDate", "")) > str(best.get("CreationDate", "")):
            best = job
    return best

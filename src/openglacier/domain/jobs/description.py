"""The GlacierJobDescription JSON (spec 2.0): DescribeJob, ListJobs, notifications.

Every member is present, with `null` where the spec says it does not apply, in
every state (spec 4.2). One function renders it so that DescribeJob and the SNS
notification body are identical, as the spec requires (4.7).
"""

from __future__ import annotations

import json
from typing import Any

from openglacier.clock import iso_ms
from openglacier.records import Job, JobAction, JobStatus

IN_PROGRESS_MESSAGE = "Operation in progress."
SUCCEEDED_MESSAGE = "Succeeded"


def job_description(job: Job, vault_arn: str) -> dict[str, Any]:
    archive = job.action is JobAction.ARCHIVE
    inventory = job.action is JobAction.INVENTORY
    select = job.action is JobAction.SELECT
    return {
        "JobId": job.job_id,
        "JobDescription": job.description,
        "Action": job.action.value,
        "ArchiveId": job.archive_id,
        "VaultARN": vault_arn,
        "CreationDate": iso_ms(job.created_at),
        "Completed": job.completed,
        "StatusCode": job.status.value,
        "StatusMessage": _status_message(job),
        "ArchiveSizeInBytes": job.archive_size if archive else None,
        "InventorySizeInBytes": (
            job.output_size if inventory and job.status is JobStatus.SUCCEEDED else None
        ),
        "SNSTopic": job.sns_topic,
        "CompletionDate": iso_ms(job.completed_at) if job.completed_at else None,
        # Spec 9 #9 [R]: populated while in progress too (the examples show it).
        "SHA256TreeHash": job.range_tree_hash if archive else None,
        "ArchiveSHA256TreeHash": job.archive_tree_hash if archive else None,
        "RetrievalByteRange": (
            f"{job.range_start}-{job.range_end}"
            if archive and job.range_start is not None
            else None
        ),
        "Tier": job.tier if not inventory else None,
        "InventoryRetrievalParameters": _inventory_parameters(job) if inventory else None,
        "JobOutputPath": job.output_path if select else None,
        "SelectParameters": _loads(job.select_parameters) if select else None,
        "OutputLocation": _loads(job.output_location) if select else None,
    }


def _status_message(job: Job) -> str:
    if job.status is JobStatus.IN_PROGRESS:
        return IN_PROGRESS_MESSAGE
    return job.status_message or (
        SUCCEEDED_MESSAGE if job.status is JobStatus.SUCCEEDED else "Failed"
    )


def _inventory_parameters(job: Job) -> dict[str, Any]:
    params = job.inventory
    assert params is not None, "inventory jobs always carry their parameters"
    # Spec 4.2: the continuation marker once succeeded (null when exhausted);
    # the input marker before that and on failure.
    marker = job.next_marker if job.status is JobStatus.SUCCEEDED else params.marker
    return {
        "Format": params.format,
        "StartDate": params.start_date,
        "EndDate": params.end_date,
        "Limit": params.limit,
        "Marker": marker,
    }


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def description_message(job: Job, vault_arn: str) -> str:
    """The notification body: the description as compact JSON (spec 4.7)."""
    return json.dumps(job_description(job, vault_arn), separators=(",", ":"))

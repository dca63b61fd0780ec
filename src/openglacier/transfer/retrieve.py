"""`archive get` and `job get` without the command line: find or start the job,
wait for it, download its output (transfer/download.py).

The job id of an archive being retrieved is recorded in the download's sidecar
(`FILE.part.state`) as soon as the job is initiated, so a rerun after a kill (or
after `--no-wait`) waits for the same job instead of asking again. A recorded
job the endpoint no longer knows (Glacier keeps job output for 24 hours) or
that failed is replaced by a new one, and the caller is told.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openglacier.transfer import jobs
from openglacier.transfer.download import download_job_output, is_not_found
from openglacier.transfer.sidecar import Sidecar


class Events(Protocol):
    def note(self, line: str) -> None: ...
    def status(self, job: dict[str, Any], elapsed: float) -> None: ...
    def waiting_ended(self) -> None: ...
    def download_started(self, total: int) -> None: ...
    def resumed(self, nbytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def download_ended(self) -> None: ...


@dataclass(frozen=True)
class Where:
    client: Any
    endpoint_key: str
    account_id: str
    vault: str


@dataclass(frozen=True)
class Transfer:
    poll_seconds: float
    parallel: int
    range_size: int


def archive_job(where: Where, archive_id: str, tier: str, dest: Path, events: Events) -> str:
    """The job retrieving `archive_id` into `dest`: the one recorded by an earlier
    run if the endpoint still has it, else a new one (recorded at once)."""
    sidecar = Sidecar.load(dest)
    meta = sidecar.meta
    recorded = meta.get("job_id")
    if recorded and (meta.get("endpoint"), meta.get("vault"), meta.get("archive_id")) == (
        where.endpoint_key,
        where.vault,
        archive_id,
    ):
        try:
            job = jobs.describe_job(where.client, where.account_id, where.vault, recorded)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            events.note(f"job {recorded} has expired; initiating a new retrieval job")
        else:
            if job.get("StatusCode") != "Failed":
                events.note(f"continuing job {recorded} ({job.get('StatusCode')})")
                return str(recorded)
            events.note(f"job {recorded} failed ({job.get('StatusMessage')}); initiating a new one")
    job_id = new_archive_job(where, archive_id, tier, sidecar)
    events.note(f"initiated retrieval job {job_id} ({tier})")
    return job_id


def new_archive_job(where: Where, archive_id: str, tier: str, sidecar: Sidecar) -> str:
    job_id = jobs.initiate_archive_retrieval(
        where.client, where.account_id, where.vault, archive_id, tier
    )
    sidecar.path.parent.mkdir(parents=True, exist_ok=True)
    sidecar.update_meta(
        endpoint=where.endpoint_key,
        vault=where.vault,
        archive_id=archive_id,
        job_id=job_id,
        tier=tier,
    )
    return job_id


def wait(where: Where, job_id: str, transfer: Transfer, events: Events) -> dict[str, Any]:
    started = time.monotonic()
    try:
        return jobs.wait_for_job(
            where.client,
            where.account_id,
            where.vault,
            job_id,
            poll_seconds=transfer.poll_seconds,
            on_status=lambda job: events.status(job, time.monotonic() - started),
        )
    finally:
        events.waiting_ended()


def download(
    where: Where, job: dict[str, Any], dest: Path, transfer: Transfer, events: Events
) -> str:
    """The finished job's output into `dest`; its tree hash (verified when the
    job has one)."""
    size = jobs.output_size(job)
    tree_hash = job.get("SHA256TreeHash") if job.get("Action") == "ArchiveRetrieval" else None
    events.download_started(size)
    try:
        return download_job_output(
            where.client,
            where.account_id,
            where.vault,
            str(job["JobId"]),
            dest,
            size=size,
            tree_hash=tree_hash,
            parallel=transfer.parallel,
            part_size=transfer.range_size,
            progress=events.advance,
            on_resume=events.resumed,
            on_repair=events.note,
        )
    finally:
        events.download_ended()


def get_archive(
    where: Where,
    archive_id: str,
    tier: str,
    dest: Path,
    transfer: Transfer,
    *,
    events: Events,
) -> str:
    """Retrieve `archive_id` into `dest`; its tree hash. A job that expires while
    its output is downloaded is asked for again once; ranges already on disk are
    kept (they are of the same archive)."""
    job_id = archive_job(where, archive_id, tier, dest, events)
    for attempt in (1, 2):
        job = wait(where, job_id, transfer, events)
        try:
            return download(where, job, dest, transfer, events)
        except Exception as exc:
            if attempt == 2 or not is_not_found(exc):
                raise
            events.note(f"job {job_id} expired during the download; initiating a new one")
            job_id = new_archive_job(where, archive_id, tier, Sidecar.load(dest))
    raise AssertionError("unreachable")

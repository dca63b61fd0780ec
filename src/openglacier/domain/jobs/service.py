"""InitiateJob, DescribeJob, ListJobs and GetJobOutput (spec 2.26-2.29, 4).

Jobs are rows; a runner (`jobs/runner.py`) completes them once due on the
timing profile. This module validates requests, records jobs and serves their
state and output. Completed jobs live for the profile's `job_retention`, then
answer 404 like unknown ones (spec 4.2), whether or not the purge has run yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.domain.governance.retrieval_limits import RetrievalLimits, enforce_limits
from openglacier.domain.inventory_doc import INVENTORY_CONTENT_TYPES
from openglacier.domain.jobs.output_plans import OutputPlans
from openglacier.domain.jobs.params import JobRequest, parse_job_request
from openglacier.domain.jobs.ranges import (
    OutputWindow,
    archive_leaves,
    output_checksum,
    parse_retrieval_range,
    plan_output,
    retrieval_tree_hash,
)
from openglacier.domain.jobs.reads import WindowedRead, archive_read, blob_read
from openglacier.domain.markers import decode_position, encode_position
from openglacier.domain.vaults import require_vault
from openglacier.errors import InvalidParameterValueException, ResourceNotFoundException
from openglacier.ids import new_job_id
from openglacier.ports import MetadataTx
from openglacier.records import (
    Archive,
    Caller,
    Job,
    JobAction,
    JobStatus,
    Segment,
    Vault,
)

JOBS_LIMIT = (50, 50)  # spec 2.28: default and maximum
STATUS_CODES = tuple(s.value for s in JobStatus)


@dataclass(frozen=True)
class JobOptions:
    inventory_before_first: str = "error"  # "empty": accept; the job outputs an empty list
    select_enabled: bool = False  # a select output location is configured
    limits: RetrievalLimits = field(default_factory=RetrievalLimits)


@dataclass(frozen=True)
class InitiatedJob:
    job_id: str
    location: str
    output_path: str | None
    # Archive retrievals and selects, for the usage report: (tier, bytes the job reads).
    retrieval: tuple[str, int] | None = None


@dataclass(frozen=True)
class JobPage:
    vault: Vault
    jobs: list[Job]
    next_marker: str | None


@dataclass(frozen=True)
class JobOutput:
    window: OutputWindow
    content_type: str
    checksum: str | None
    archive_description: str | None
    body: WindowedRead


def job_not_found(job_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The job ID was not found: {job_id}")


def parse_status_filter(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    if value not in STATUS_CODES:
        raise InvalidParameterValueException(f"The job status code is not valid: {value}")
    return JobStatus(value)


def parse_completed_filter(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise InvalidParameterValueException(
            f"Invalid value for completed: {value}. Valid values are: true, false."
        )
    return value.lower() == "true"


class JobService:
    def __init__(self, deps: Deps, options: JobOptions, on_initiated: Callable[[], None]) -> None:
        self.deps = deps
        self.options = options
        self.on_initiated = on_initiated  # wakes this process's runner (instant jobs)
        self.plans = OutputPlans()  # succeeded archive jobs' output plans (output_plans.py)

    # --- InitiateJob ----------------------------------------------------------
    async def initiate(
        self, caller: Caller, vault_name: str, body: dict[str, object]
    ) -> InitiatedJob:
        def run(tx: MetadataTx) -> InitiatedJob:
            vault = require_vault(self.deps, tx, caller, vault_name)
            request = parse_job_request(dict(body))
            job = self._new_job(tx, vault, request)
            tx.insert_job(job)
            return InitiatedJob(
                job.job_id,
                f"/{caller.account_id}/vaults/{vault.name}/jobs/{job.job_id}",
                job.output_path,
                _retrieval(job),
            )

        initiated = await self.deps.in_tx(run)
        self.on_initiated()
        return initiated

    def _new_job(self, tx: MetadataTx, vault: Vault, request: JobRequest) -> Job:
        now = self.deps.clock.now()
        job_id = new_job_id()
        base = Job(
            job_id=job_id,
            vault_id=vault.id,
            action=request.action,
            status=JobStatus.IN_PROGRESS,
            created_at=now,
            due_at=now + self.deps.timing.job_delay(request.tier),
            description=request.description,
            sns_topic=request.sns_topic,
            tier=request.tier,
        )
        if request.action is JobAction.INVENTORY:
            self._check_inventory_exists(tx, vault)
            return replace(base, inventory=request.inventory)
        if request.action is JobAction.SELECT:
            job = self._select_job(tx, vault, base, request)
        else:
            job = self._archive_job(tx, vault, base, request)
        enforce_limits(self.deps, tx, self.options.limits, vault, job)  # spec 1.8 step 9
        return job

    def _check_inventory_exists(self, tx: MetadataTx, vault: Vault) -> None:
        # Spec 2.26 / 9 #15 [R]: 404 before the vault's first inventory (configurable).
        if self.options.inventory_before_first == "empty":
            return
        if tx.latest_inventory(vault.id) is None:
            raise ResourceNotFoundException(
                f"Inventory not yet generated for vault: {self._arn(vault)}"
            )

    def _archive_job(self, tx: MetadataTx, vault: Vault, base: Job, request: JobRequest) -> Job:
        archive_id = str(request.archive_id)
        archive = self._require_archive(tx, vault, archive_id)
        first, last = parse_retrieval_range(request.byte_range, archive.size)
        leaves = archive_leaves(tx.get_segments(archive_id))
        return replace(
            base,
            archive_id=archive_id,
            archive_size=archive.size,
            archive_tree_hash=archive.tree_hash,
            archive_description=archive.description,
            range_start=first,
            range_end=last,
            range_tree_hash=retrieval_tree_hash(leaves, first, last, archive.size),
        )

    def _select_job(self, tx: MetadataTx, vault: Vault, base: Job, request: JobRequest) -> Job:
        # Imported on first use: the SQL engine is only loaded by servers that see select jobs.
        from openglacier.domain.select.jobs import job_output_path, parse_select_job  # noqa: PLC0415

        select = parse_select_job(request.select_parameters, request.output_location)
        archive_id = str(request.archive_id)
        self._require_archive(tx, vault, archive_id)
        if not self.options.select_enabled:
            raise InvalidParameterValueException(
                "Select jobs are not available: this server has no select output location "
                "configured (openglacier serve --select-output-url)."
            )
        return replace(
            base,
            archive_id=archive_id,
            select_parameters=json.dumps(select.parameters),
            output_location=json.dumps(select.output_location),
            output_path=job_output_path(select, base.job_id),
        )

    def _require_archive(self, tx: MetadataTx, vault: Vault, archive_id: str) -> Archive:
        archive = tx.get_archive(archive_id)
        # Spec 2.26 [R]: a deleted archive is rejected like an unknown one.
        if archive is None or archive.removed_seq is not None:
            raise ResourceNotFoundException(f"The archive ID was not found: {archive_id}")
        if archive.vault_id != vault.id:
            raise InvalidParameterValueException(f"Invalid vault name: {self._arn(vault)}")
        return archive

    # --- DescribeJob / ListJobs -------------------------------------------------
    async def describe(
        self, caller: Caller, vault_name: str, job_id: str, *, checked: Vault | None = None
    ) -> tuple[Vault, Job]:
        def run(tx: MetadataTx) -> tuple[Vault, Job]:
            vault = self._vault(tx, caller, vault_name, checked)
            return vault, self._require_job(tx, vault, job_id)

        return await self.deps.in_read_tx(run)

    async def list(
        self,
        caller: Caller,
        vault_name: str,
        *,
        limit: int,
        marker: str | None,
        status: JobStatus | None,
        completed: bool | None,
        checked: Vault | None = None,
    ) -> JobPage:
        after = decode_position(marker) if marker else None

        def run(tx: MetadataTx) -> JobPage:
            vault = self._vault(tx, caller, vault_name, checked)
            rows = tx.list_jobs(vault.id, after, limit + 1, status=status, completed=completed)
            page, more = rows[:limit], len(rows) > limit
            visible = [j for j in page if not self._expired(j)]
            return JobPage(
                vault,
                visible,
                encode_position(page[-1].created_at, page[-1].job_id) if more else None,
            )

        return await self.deps.in_read_tx(run)

    def _vault(
        self, tx: MetadataTx, caller: Caller, vault_name: str, checked: Vault | None
    ) -> Vault:
        """`checked`: the vault as this request's policy check read it a moment
        ago, so a read-only operation need not read it again (a vault deleted
        in between is answered as if the request had come just before)."""
        return checked if checked is not None else require_vault(self.deps, tx, caller, vault_name)

    def _require_job(self, tx: MetadataTx, vault: Vault, job_id: str) -> Job:
        job = tx.get_job(job_id)
        if job is None or job.vault_id != vault.id or self._expired(job):
            raise job_not_found(job_id)
        return job

    def _expired(self, job: Job) -> bool:
        if job.completed_at is None:
            return False
        return self.deps.clock.now() >= job.completed_at + self.deps.timing.job_retention

    # --- GetJobOutput -----------------------------------------------------------
    async def output(
        self,
        caller: Caller,
        vault_name: str,
        job_id: str,
        range_header: str | None,
        *,
        checked: Vault | None = None,
    ) -> JobOutput:
        cached = self.plans.get(job_id)
        fresh: list[tuple[Job, tuple[Segment, ...]]] = []

        def run(tx: MetadataTx) -> JobOutput:
            vault = self._vault(tx, caller, vault_name, checked)
            if cached is not None and cached[0].vault_id == vault.id:
                job, segments = cached
                if self._expired(job):
                    raise job_not_found(job_id)
                return self._archive_output(tx, vault, job, segments, range_header)
            job = self._require_job(tx, vault, job_id)
            if job.status is not JobStatus.SUCCEEDED:
                raise InvalidParameterValueException(
                    f"The job is not currently available for download: {job_id}"
                )
            if job.action is JobAction.SELECT:
                raise InvalidParameterValueException(
                    f"Select job output is written to Amazon S3, not returned by "
                    f"GetJobOutput: {job.output_path}"
                )
            if job.action is JobAction.INVENTORY:
                return self._inventory_output(job, range_header)
            assert job.archive_id is not None
            segments = tuple(tx.get_job_segments(job.job_id, job.archive_id))
            fresh.append((job, segments))
            return self._archive_output(tx, vault, job, segments, range_header)

        output = await self.deps.in_read_tx(run)
        for job, segments in fresh:  # a retried transaction may have run twice
            self.plans.put(job, segments)
        return output

    def _inventory_output(self, job: Job, range_header: str | None) -> JobOutput:
        assert job.output_blob_key is not None
        assert job.output_size is not None
        assert job.inventory is not None
        window = plan_output(range_header, job.output_size)
        body = blob_read(self.deps.blobs, job.output_blob_key, window.first, window.last)
        return JobOutput(window, INVENTORY_CONTENT_TYPES[job.inventory.format], None, None, body)

    def _archive_output(
        self,
        tx: MetadataTx,
        vault: Vault,
        job: Job,
        segments: Sequence[Segment],
        range_header: str | None,
    ) -> JobOutput:
        """`segments`: the job's pinned segments (read now, or kept in `plans`).
        Open damage is read on every request, cached plan or not."""
        assert job.archive_id is not None
        assert job.archive_size is not None
        assert job.range_start is not None
        assert job.range_end is not None
        quarantined = tx.open_damage(job.archive_id)
        if quarantined is not None:
            raise damage.quarantined_error(quarantined)
        window = plan_output(range_header, job.range_end - job.range_start + 1)
        checksum = output_checksum(
            archive_leaves(segments),
            job.archive_size,
            (job.range_start, job.range_end),
            window,
            retrieved_aligned=job.range_tree_hash is not None,
        )
        first = job.range_start + window.first
        last = job.range_start + window.last
        where = self._arn(vault)  # named if the archive proves damaged
        # A succeeded archive retrieval read and verified its whole range against
        # the leaf hashes when it completed (jobs/executors.py), so blobs whose
        # store checks every chunk need no second SHA-256; codec-0 blobs (jobs
        # completed before that check existed only ever pinned those) still get it.
        body = archive_read(
            self.deps.blobs,
            segments,
            first,
            last,
            vault=where,
            trust_checked=True,
            on_damage=damage.ReadDamageRecorder(self.deps, segments, where),
        )
        return JobOutput(
            window, "application/octet-stream", checksum, job.archive_description, body
        )

    def _arn(self, vault: Vault) -> str:
        return self.deps.vault_arn(vault.region, vault.account_id, vault.name)


def _retrieval(job: Job) -> tuple[str, int] | None:
    """A retrieval or select job's tier (Standard when not given, spec 4.1) and
    the bytes it reads: its range, else its archive."""
    if job.action is JobAction.INVENTORY:
        return None
    tier = job.tier or "Standard"
    if job.range_start is not None and job.range_end is not None:
        return tier, job.range_end - job.range_start + 1
    return tier, job.archive_size or 0

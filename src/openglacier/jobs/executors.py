"""What completing a job means, per job type (spec 4.1).

Each executor does the work and records the outcome through `finish`, which
stores the finished job only if the runner still holds its lease (fencing), and
queues the notifications in the same transaction (spec 4.7), so a job is never
completed twice and never completed without its notifications.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from openglacier.domain import damage
from openglacier.domain.context import Deps
from openglacier.domain.inventory_doc import InventoryOutcome, inventory_window, write_inventory
from openglacier.domain.jobs.description import (
    SUCCEEDED_MESSAGE,
    description_message,
    job_description,
)
from openglacier.domain.jobs.reads import read_range, verify_range
from openglacier.errors import GlacierError, IntegrityError, StorageError
from openglacier.ids import new_blob_key
from openglacier.ports import DamageRecord, MetadataTx
from openglacier.records import (
    Archive,
    InventoryItem,
    Job,
    JobAction,
    JobStatus,
    NotificationConfig,
    Segment,
)

if TYPE_CHECKING:
    from openglacier.domain.select.jobs import SelectOutcome
    from openglacier.ports import OutputSink

log = logging.getLogger("openglacier.jobs")

ARCHIVE_DELETED = "The archive was deleted before its data could be retrieved."
EVENTS = {
    JobAction.ARCHIVE: "ArchiveRetrievalCompleted",
    JobAction.INVENTORY: "InventoryRetrievalCompleted",
}


class LeaseLost(Exception):
    """The runner no longer holds the job: another runner took or finished it."""


@dataclass(frozen=True)
class VaultFacts:
    """What `finish` needs of a job's vault; read once per vault when a
    group of jobs is completed together (jobs/batch.py)."""

    arn: str | None  # None: the vault was deleted meanwhile
    notifications: NotificationConfig | None

    @staticmethod
    def read(deps: Deps, tx: MetadataTx, vault_id: int) -> VaultFacts:
        vault = tx.get_vault_by_id(vault_id)
        if vault is None:
            return VaultFacts(None, None)
        arn = deps.vault_arn(vault.region, vault.account_id, vault.name)
        return VaultFacts(arn, tx.get_vault_notifications(vault_id))


@dataclass
class ArchiveFacts:
    """What completing a retrieval needs of its archive, read once per archive
    for a group of jobs, outside their savepoints: the archive row is locked
    for the transaction (a savepoint rolled back on PostgreSQL would release a
    lock taken inside it)."""

    archive: Archive | None
    segments: list[Segment]
    quarantine: DamageRecord | None  # an open damage record

    @staticmethod
    def read(tx: MetadataTx, archive_id: str) -> ArchiveFacts:
        # Locked: a concurrent DeleteArchive either ran before (we see it
        # removed) or waits until the pins are committed, and blob collection
        # never deletes a pinned blob.
        archive = tx.get_archive(archive_id, for_update=True)
        if archive is None or archive.removed_seq is not None:
            return ArchiveFacts(None, [], None)
        return ArchiveFacts(archive, tx.get_segments(archive_id), tx.open_damage(archive_id))


def finish(
    deps: Deps, tx: MetadataTx, job: Job, owner: str | None, vault: VaultFacts | None = None
) -> None:
    """Store the finished job and queue its notifications; LeaseLost if fenced."""
    if not tx.finish_job(job, owner):
        raise LeaseLost(job.job_id)
    facts = vault or VaultFacts.read(deps, tx, job.vault_id)
    if facts.arn is None:  # deleted meanwhile: nobody is left to tell
        return
    message = description_message(job, facts.arn)
    now = deps.clock.now()
    # Spec 4.7: the job's own topic and the vault's, both when both apply.
    if job.sns_topic:
        tx.enqueue_notification(job.sns_topic, message, now)
    config = facts.notifications
    event = EVENTS.get(job.action)
    if config is not None and event in config.events:
        tx.enqueue_notification(config.sns_topic, message, now)


def _require_lease(tx: MetadataTx, job: Job, owner: str) -> None:
    """Before pinning anything: a runner that lost the job leaves it alone.

    Not a row lock: a stalled runner must not keep others from taking over.
    The fenced `finish_job` in the same transaction is what guarantees one
    completion; this check only saves the work (and a duplicate-pin error).
    """
    current = tx.get_job(job.job_id)
    if current is None or current.completed or current.lease_owner != owner:
        raise LeaseLost(job.job_id)


def failed(job: Job, deps: Deps, reason: str) -> Job:
    return replace(
        job, status=JobStatus.FAILED, status_message=reason, completed_at=deps.clock.now()
    )


def succeeded(job: Job, deps: Deps, **changes: object) -> Job:
    done = replace(
        job,
        status=JobStatus.SUCCEEDED,
        status_message=SUCCEEDED_MESSAGE,
        completed_at=deps.clock.now(),
    )
    return replace(done, **changes)  # type: ignore[arg-type]


@dataclass
class JobExecutor:
    deps: Deps
    sink_factory: Callable[[], OutputSink] | None = None
    _sink: OutputSink | None = None

    async def execute(self, job: Job, owner: str) -> None:
        """Complete an inventory or select `job`; LeaseLost if another runner
        finished it meanwhile. Archive retrievals run in batches (jobs/batch.py)."""
        if job.action is JobAction.INVENTORY:
            await self._inventory(job, owner)
        else:
            await self._select(job, owner)

    async def fail(self, job: Job, reason: str, owner: str | None) -> None:
        await self.deps.in_tx(
            lambda tx: finish(self.deps, tx, failed(job, self.deps, reason), owner)
        )

    # --- archive retrieval --------------------------------------------------------
    def archive_problem(
        self, job: Job, segments: list[Segment], cancelled: Callable[[], None]
    ) -> str | None:
        """Check the blobs the retrieval will read before it succeeds, outside
        any write transaction (stat calls may be slow). A blob missing because
        the archive was deleted meanwhile is told apart in `complete_archive`,
        under the archive's row lock: a live archive's blobs are never collected.

        Then read the whole range against the stored leaf hashes (`cancelled`
        raises between leaves when the runner stops): that is what a retrieval
        is, and GetJobOutput relies on it to skip a second SHA-256 of blobs
        whose store checks every chunk (domain/jobs/service.py). On a worker thread."""
        assert job.range_start is not None
        assert job.range_end is not None
        first, last = job.range_start, job.range_end
        wanted = [s for s in segments if s.offset <= last and s.offset + s.size > first]
        problem = damage.blob_problem(self.deps.blobs, wanted)
        if problem is None:
            problem = verify_range(self.deps.blobs, wanted, first, last, cancelled)
        return problem

    def complete_archive(
        self,
        tx: MetadataTx,
        *,
        job: Job,
        owner: str,
        problem: str | None,
        archive: ArchiveFacts,
        vault: VaultFacts,
    ) -> None:
        """Record the retrieval's outcome: failed if damaged, quarantined or
        deleted, else succeeded with the archive's blobs pinned for the output.

        The fenced `finish` comes first: a runner that lost the job pins
        nothing (a second pin of the job's blobs would be refused)."""
        if archive.archive is None:
            finish(self.deps, tx, failed(job, self.deps, ARCHIVE_DELETED), owner, vault)
            return
        if problem is not None:
            finish(self.deps, tx, failed(job, self.deps, damage.DAMAGED_MESSAGE), owner, vault)
            # Later jobs of the group see it, as they would have read it.
            archive.quarantine = self._report_damage(tx, job, problem, archive, vault)
            return
        if self._quarantined(job, archive.quarantine):
            finish(self.deps, tx, failed(job, self.deps, damage.DAMAGED_MESSAGE), owner, vault)
            return
        assert job.range_start is not None
        assert job.range_end is not None
        length = job.range_end - job.range_start + 1
        finish(self.deps, tx, succeeded(job, self.deps, output_size=length), owner, vault)
        tx.put_job_segments(job.job_id, archive.segments)

    def _report_damage(
        self, tx: MetadataTx, job: Job, problem: str, archive: ArchiveFacts, vault: VaultFacts
    ) -> DamageRecord:
        """The ERROR line, the metric and the durable record (domain/damage.py)."""
        assert job.archive_id is not None
        finding = damage.finding(
            blob_key=damage.blob_named(problem, archive.segments),
            problem=f"{problem} (job {job.job_id} failed)",
            found_by="job",
            vault=vault.arn or "?",
            now=self.deps.clock.now(),
            archive_id=job.archive_id,
            note=damage.note_for(self.deps.blobs),
        )
        return damage.found(tx, finding)

    @staticmethod
    def _quarantined(job: Job, record: DamageRecord | None) -> bool:
        """An archive with an open quarantined damage record is never served
        as good, whatever its blobs look like now (domain/damage.py)."""
        if record is not None:
            log.warning(
                "job %s failed: archive %s is quarantined (damage record %d: %s)",
                job.job_id,
                job.archive_id,
                record.id,
                record.problem,
            )
        return record is not None

    def _select_quarantined(self, tx: MetadataTx, job: Job) -> bool:
        assert job.archive_id is not None
        return self._quarantined(job, tx.open_damage(job.archive_id))

    def _pin_leased(self, tx: MetadataTx, *, job: Job, owner: str) -> list[Segment] | None:
        _require_lease(tx, job, owner)
        return self._pin(tx, job)

    def _pin(self, tx: MetadataTx, job: Job) -> list[Segment] | None:
        """Pin the archive's blobs for the job; None if the archive is gone.

        The archive row is locked, so a concurrent DeleteArchive either ran
        before (we see it removed) or waits until the pins are committed, and
        blob collection never deletes a pinned blob.
        """
        assert job.archive_id is not None
        archive = tx.get_archive(job.archive_id, for_update=True)
        if archive is None or archive.removed_seq is not None:
            return None
        segments = tx.get_segments(job.archive_id)
        tx.put_job_segments(job.job_id, segments)
        return segments

    # --- inventory retrieval -----------------------------------------------------
    async def _inventory(self, job: Job, owner: str) -> None:
        key = new_blob_key()
        outcome, size = await self.deps.blocking(partial(self._write_inventory, job, key))
        done = succeeded(
            job, self.deps, output_blob_key=key, output_size=size, next_marker=outcome.next_marker
        )
        try:
            await self.deps.in_tx(lambda tx: finish(self.deps, tx, done, owner))
        except BaseException:
            now = self.deps.clock.now()
            await self.deps.in_tx(lambda tx: tx.queue_blob_deletes([key], now))
            raise

    def _write_inventory(self, job: Job, key: str) -> tuple[InventoryOutcome, int]:
        """Stream the document from one read snapshot into a new blob (spec 4.6)."""
        params = job.inventory
        assert params is not None
        start, end = inventory_window(params)
        writer = self.deps.blobs.create(key)
        try:
            with self.deps.store.transaction(readonly=True) as tx:
                vault = tx.get_vault_by_id(job.vault_id)
                if vault is None:
                    raise StorageError(f"vault {job.vault_id} of job {job.job_id} is gone")
                snapshot = tx.latest_inventory(vault.id)
                arn = self.deps.vault_arn(vault.region, vault.account_id, vault.name)

                def fetch(after: tuple[datetime, str] | None, limit: int) -> list[InventoryItem]:
                    if snapshot is None:
                        return []  # inventory_before_first = "empty"
                    return tx.inventory_items(
                        vault.id, snapshot.seq, start=start, end=end, after=after, limit=limit
                    )

                taken = snapshot.taken_at if snapshot else self.deps.clock.now()
                outcome = write_inventory(fetch, params, arn, taken, writer.write)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        return outcome, info.size

    # --- select -------------------------------------------------------------------
    async def _select(self, job: Job, owner: str) -> None:
        if await self.deps.in_read_tx(partial(self._select_quarantined, job=job)):
            await self.fail(job, damage.DAMAGED_MESSAGE, owner)
            return
        segments = await self.deps.in_tx(partial(self._pin_leased, job=job, owner=owner))
        if segments is None:
            await self.fail(job, ARCHIVE_DELETED, owner)
            return
        try:
            outcome = await self.deps.blocking(partial(self._run_select, job, segments))
            done = (
                succeeded(job, self.deps)
                if outcome.succeeded
                else failed(job, self.deps, outcome.message)
            )

            def record(tx: MetadataTx) -> None:
                tx.release_job_segments(job.job_id, self.deps.clock.now())
                finish(self.deps, tx, done, owner)

            await self.deps.in_tx(record)
        except BaseException:
            now = self.deps.clock.now()
            await self.deps.in_tx(lambda tx: tx.release_job_segments(job.job_id, now))
            raise

    def _run_select(self, job: Job, segments: list[Segment]) -> SelectOutcome:
        # Imported on first use, like in domain/jobs/service.py.
        from openglacier.domain.select.jobs import (  # noqa: PLC0415
            SelectOutcome,
            parse_select_job,
            run_select,
        )

        assert job.select_parameters is not None
        assert job.output_location is not None
        request = parse_select_job(
            json.loads(job.select_parameters), json.loads(job.output_location)
        )
        size = sum(s.size for s in segments)
        arn = f"#{job.vault_id}"  # until the vault is read
        try:
            data = read_range(self.deps.blobs, segments, 0, size - 1, verify=True)
            with self.deps.store.transaction(readonly=True) as tx:
                vault = tx.get_vault_by_id(job.vault_id)
            arn = self.deps.vault_arn(vault.region, vault.account_id, vault.name) if vault else ""
            description = job_description(job, arn)
            now = self.deps.clock.now()  # UTCNOW() follows the injected clock
            return run_select(request, job.job_id, description, data, self.sink(), now=now)
        except IntegrityError as exc:
            self._select_damage(job, segments, arn, f"{exc} (select job {job.job_id} failed)")
            return SelectOutcome(succeeded=False, message=damage.DAMAGED_MESSAGE)
        except GlacierError as exc:
            log.warning("select job %s failed: %s", job.job_id, exc)
            return SelectOutcome(succeeded=False, message=str(exc))

    def _select_damage(self, job: Job, segments: list[Segment], arn: str, problem: str) -> None:
        """Reported and recorded like any finding; on this worker thread."""
        assert job.archive_id is not None
        finding = damage.finding(
            blob_key=damage.blob_named(problem, segments),
            problem=problem,
            found_by="job",
            vault=arn,
            now=self.deps.clock.now(),
            archive_id=job.archive_id,
            note=damage.note_for(self.deps.blobs),
        )
        with self.deps.store.transaction() as tx:
            damage.found(tx, finding)

    def sink(self) -> OutputSink:
        if self._sink is None:
            if self.sink_factory is None:
                raise StorageError("select output is not configured")
            self._sink = self.sink_factory()
        return self._sink

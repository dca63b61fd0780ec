"""Damaged archives: what a missing or unreadable blob becomes.

A blob an archive's segment names can vanish (deleted by hand, a lost disk) or
fail its checks (bit rot, truncation). Either is damage to that archive, never
a request to retry. Whoever finds it (the scrubber, a download, a job):

- logs one ERROR line naming the archive, its vault and the blob (`report`),
  without a traceback, and counts it (metrics.DAMAGE_FOUND by `found_by`);
- records it durably (`record`, MetadataTx.record_damage): one record per
  damaged blob, found again later only moves its last_seen_at.

An open quarantined record means no good copy of the blob is known, so the
archive is never served as good, whatever a later read would find:

- an archive-retrieval job checks its blobs when it completes and fails with
  `DAMAGED_MESSAGE`; so does one of a quarantined archive, without reading;
- a select job fails with the same message;
- GetJobOutput of a job that had succeeded answers 500
  ServiceUnavailableException (the only server-fault code Glacier has) whose
  message names the archive and the missing or damaged blob;
- the admin audit lists the archive among its problems.

The blob itself stays where it is: for forensics, and for the scrubber, which
verifies it again on every pass and closes the record when it is good again
(restored from a replica, or by the operator).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from openglacier.clock import iso_ms
from openglacier.domain.context import Deps
from openglacier.errors import IntegrityError
from openglacier.metrics import DAMAGE_FOUND
from openglacier.ports import BlobCopies, BlobStore, DamageRecord, MetadataTx
from openglacier.records import Segment

log = logging.getLogger("openglacier.damage")

DAMAGED_MESSAGE = "The archive's data is damaged and cannot be retrieved."
NO_REPLICA_NOTE = "no replica configured: restore the archive from another copy"
Span = tuple[int, int]  # retrieval.Span (retrieval imports this module)


def missing_blob(segment: Segment) -> IntegrityError:
    return IntegrityError(
        f"Archive {segment.archive_id} is damaged: blob {segment.blob_key} is missing"
    )


def report(archive_id: str, vault: str, problem: str, *, found_by: str = "read") -> None:
    """The operator's line: `problem` names the blob (every message here does)."""
    log.error("archive %s in vault %s is damaged: %s", archive_id, vault, problem)
    DAMAGE_FOUND.labels(found_by).inc()


def blob_problem(blobs: BlobStore, segments: Iterable[Segment]) -> str | None:
    """A cheap check of the segments' blobs: present, well-formed, of the
    recorded size. None if all are; else what is wrong. Contents are verified
    on every read, not here."""
    for segment in segments:
        try:
            info = blobs.stat(segment.blob_key)
        except IntegrityError as exc:
            return str(exc)
        if info is None:
            return f"blob {segment.blob_key} is missing"
        if info.size != segment.size:
            return f"blob {segment.blob_key} holds {info.size} bytes, expected {segment.size}"
    return None


# --- durable records ------------------------------------------------------------------


def note_for(blobs: BlobStore) -> str | None:
    """What a new record says about its repair: without a second copy there
    is none to restore from; with one, the scrubber tries."""
    return None if isinstance(blobs, BlobCopies) else NO_REPLICA_NOTE


def finding(
    *,
    blob_key: str,
    problem: str,
    found_by: str,
    vault: str,
    now: datetime,
    archive_id: str | None = None,
    upload_id: str | None = None,
    quarantined: bool = True,
    note: str | None = None,
) -> DamageRecord:
    return DamageRecord(
        id=0,
        blob_key=blob_key,
        archive_id=archive_id,
        upload_id=upload_id,
        vault=vault,
        problem=problem,
        found_by=found_by,
        found_at=now,
        last_seen_at=now,
        quarantined=quarantined,
        repair_note=note,
    )


def record(tx: MetadataTx, damage: DamageRecord) -> DamageRecord:
    """Durably only: the caller has reported it (or `found` does both)."""
    return tx.record_damage(damage)


def found(tx: MetadataTx, damage: DamageRecord) -> DamageRecord:
    """A new finding: the ERROR line, the metric and the record."""
    owner = f"archive {damage.archive_id}" if damage.archive_id else f"upload {damage.upload_id}"
    problem = damage.problem
    if damage.blob_key not in problem:
        problem = f"blob {damage.blob_key}: {problem}"
    log.error("%s in vault %s is damaged: %s", owner, damage.vault, problem)
    DAMAGE_FOUND.labels(damage.found_by).inc()
    return tx.record_damage(damage)


def blob_named(problem: str, segments: Sequence[Segment]) -> str:
    """The blob a damage message is about: the segment whose key it names
    (every message here names one); the first segment's otherwise."""
    return next((s.blob_key for s in segments if s.blob_key in problem), segments[0].blob_key)


def quarantined_error(damage: DamageRecord) -> IntegrityError:
    """GetJobOutput's answer for a quarantined archive: the damage error a
    read would raise, naming the archive and the blob."""
    problem = damage.problem
    if damage.blob_key not in problem:
        problem = f"blob {damage.blob_key}: {problem}"
    return IntegrityError(
        f"Archive {damage.archive_id} is damaged (found {iso_ms(damage.found_at)}, "
        f"quarantined): {problem}"
    )


class ReadDamageRecorder:
    """Records the damage a download finds (`archive_read(on_damage=...)`).

    The read reports it (the ERROR line) itself; this adds the durable record,
    from the worker thread the read runs on. The request fails as it would
    have: a record that cannot be written is logged, never raised.
    """

    def __init__(self, deps: Deps, segments: Sequence[Segment], vault: str) -> None:
        self.deps = deps
        self.segments = tuple(segments)
        self.vault = vault

    def __call__(self, problem: str) -> None:
        self._record(problem)

    def _record(self, problem: str) -> None:
        first = self.segments[0]
        damage = finding(
            blob_key=blob_named(problem, self.segments),
            problem=problem,
            found_by="read",
            vault=self.vault,
            now=self.deps.clock.now(),
            archive_id=first.archive_id,
            note=note_for(self.deps.blobs),
        )
        try:
            with self.deps.store.transaction() as tx:
                record(tx, damage)
        except Exception:
            log.warning(
                "could not record the damage to archive %s (blob %s)",
                damage.archive_id,
                damage.blob_key,
                exc_info=True,
            )

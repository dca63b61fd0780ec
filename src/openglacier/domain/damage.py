"""Damaged archives: what a missing or unreadable blob becomes.

A blob an archive's segment names can vanish (deleted by hand, a lost disk) or
fail its checks (bit rot, truncation). Either is damage to that archive, never
a request to retry: the operator gets one ERROR line naming the archive, its
vault and the blob (`report`), without a traceback, and the client a Glacier
error or a failed job whose message says the data is damaged:

- an archive-retrieval job checks its blobs when it completes and fails with
  `DAMAGED_MESSAGE` (spec 4.2: failure causes include an internal error);
- a select job fails with the same message;
- GetJobOutput of a job that had succeeded answers 500
  ServiceUnavailableException (the only server-fault code Glacier has, spec
  1.8) whose message names the archive and the missing or damaged blob;
- the admin audit lists the archive among its problems.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from openglacier.domain.models import Segment
from openglacier.errors import IntegrityError
from openglacier.ports import BlobStore

log = logging.getLogger("openglacier.damage")

DAMAGED_MESSAGE = "The archive's data is damaged and cannot be retrieved."


def missing_blob(segment: Segment) -> IntegrityError:
    return IntegrityError(
        f"Archive {segment.archive_id} is damaged: blob {segment.blob_key} is missing"
    )


def report(archive_id: str, vault: str, problem: str) -> None:
    """The operator's line: `problem` names the blob (every message here does)."""
    log.error("archive %s in vault %s is damaged: %s", archive_id, vault, problem)


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

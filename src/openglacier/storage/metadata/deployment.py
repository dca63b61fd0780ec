"""The deployment row (the recorded blob URL and replica URL) and the blob
references a migration copies (issues 13, 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, union, update

from openglacier.ports import BlobCensus, BlobRef
from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import (
    archive_segments,
    blob_deletes,
    deployment,
    job_segments,
    jobs,
    parts,
)

_ROW = 1  # the one row's id


def _ref_selects() -> list[Select[Any]]:
    """(key, size, leaves, owner) per referencing table; keep in step with
    blobqueue._REFERENCING_COLUMNS (the deletion queue aside: queued blobs are
    on their way out and need no copy)."""
    seg, prt, jseg = archive_segments.c, parts.c, job_segments.c
    return [
        select(seg.blob_key, seg.size, seg.leaf_hashes, literal("archive ") + seg.archive_id),
        select(prt.blob_key, prt.size, prt.leaf_hashes, literal("upload ") + prt.upload_id),
        select(jseg.blob_key, jseg.size, jseg.leaf_hashes, literal("job ") + jseg.job_id),
        select(
            jobs.c.output_blob_key,
            jobs.c.output_size,
            literal(None).label("leaf_hashes"),
            literal("job ") + jobs.c.job_id,
        ).where(jobs.c.output_blob_key.is_not(None)),
    ]


class DeploymentOps(TxBase):
    def recorded_blob_url(self) -> str | None:
        row = self._first(select(deployment.c.blob_url).where(deployment.c.id == _ROW))
        return None if row is None else str(row.blob_url)

    def record_blob_url(self, url: str, now: datetime) -> str:
        stmt = self._insert(deployment).values(id=_ROW, blob_url=url, recorded_at=now)
        self._run(stmt.on_conflict_do_nothing())
        recorded = self.recorded_blob_url()
        assert recorded is not None  # inserted or already there, in this transaction
        return recorded

    def recorded_replica_url(self) -> str | None:
        row = self._first(select(deployment.c.replica_blob_url).where(deployment.c.id == _ROW))
        return None if row is None or row.replica_blob_url is None else str(row.replica_blob_url)

    def record_replica_url(self, url: str, now: datetime) -> str | None:
        # Only where none is recorded: of two processes adding a replica at
        # once, the first update wins and the other reads the winner back.
        stmt = (
            update(deployment)
            .where(deployment.c.id == _ROW, deployment.c.replica_blob_url.is_(None))
            .values(replica_blob_url=url)
        )
        self._run(stmt)
        return self.recorded_replica_url()

    def switch_blob_url(self, old: str | None, new: str, now: datetime) -> bool:
        if old is None:
            return self.record_blob_url(new, now) == new
        stmt = (
            update(deployment)
            .where(deployment.c.id == _ROW, deployment.c.blob_url == old)
            .values(blob_url=new, recorded_at=now)
        )
        return self._run(stmt) == 1

    def blob_refs(self, after: str | None, limit: int) -> list[BlobRef]:
        """Each table's next `limit` rows in key order, merged. A table may name
        one key many times (two jobs pin one segment), so only keys up to the
        smallest last key of a full page are certainly complete: the page ends
        there, and the next one starts after it."""
        rows, cutoff = self._merged_pages(_ref_selects(), after, limit)
        refs: dict[str, BlobRef] = {}
        for key, size, leaves, owner in sorted(rows, key=lambda r: str(r[0])):
            if cutoff is not None and key > cutoff:
                break
            refs.setdefault(key, BlobRef(key, int(size), leaves, str(owner)))
        return list(refs.values())

    def blob_census(self) -> BlobCensus:
        # UNION (not ALL) drops repeats: one key always has one size.
        keyed = union(*(s.with_only_columns(*s.selected_columns[:2]) for s in _ref_selects()))
        sub = keyed.subquery()
        counted = select(func.count(), func.coalesce(func.sum(sub.c.size), 0))
        row = self._first(counted)
        queued = self._scalar(select(func.count()).select_from(blob_deletes))
        assert row is not None
        return BlobCensus(blobs=int(row[0]), size=int(row[1]), queued_deletes=int(queued))

"""Archive rows and the segments (blob references) that hold their bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, select, update

from openglacier.records import Archive, Segment
from openglacier.storage.metadata.base import TxBase, values_of
from openglacier.storage.metadata.schema import archive_segments, archives

# Read for every retrieval job and its completion: built once, so a call pays
# no statement construction or cache-key generation (docs/performance.md).
_ARCHIVE = select(archives).where(archives.c.archive_id == bindparam("archive_id"))
# SQLite renders no FOR UPDATE: its BEGIN IMMEDIATE already serialises.
_ARCHIVE_FOR_UPDATE = _ARCHIVE.with_for_update()
_SEGMENTS = (
    select(archive_segments)
    .where(archive_segments.c.archive_id == bindparam("archive_id"))
    .order_by(archive_segments.c.seq)
)


def archive_from_row(row: Row[Any]) -> Archive:
    return Archive(**row._mapping)


def _segment(row: Row[Any]) -> Segment:
    return Segment(**row._mapping)


class ArchiveOps(TxBase):
    def insert_archive(self, archive: Archive, segments: Sequence[Segment]) -> None:
        strays = {s.archive_id for s in segments} - {archive.archive_id}
        if strays:
            raise ValueError(f"segments of other archives given: {sorted(strays)}")
        self._run(archives.insert().values(values_of(archive)))
        if segments:
            self._run(archive_segments.insert(), [values_of(s) for s in segments])

    def get_archive(self, archive_id: str, *, for_update: bool = False) -> Archive | None:
        stmt = _ARCHIVE_FOR_UPDATE if for_update else _ARCHIVE
        row = self._first(stmt, {"archive_id": archive_id})
        return None if row is None else archive_from_row(row)

    def remove_archive(self, archive_id: str, removed_seq: int, now: datetime) -> None:
        marked = self._run(
            update(archives)
            .where(archives.c.archive_id == archive_id, archives.c.removed_seq.is_(None))
            .values(removed_seq=removed_seq)
        )
        if not marked:
            return  # missing or already removed: its segments are already gone
        # The row stays (until an inventory drops it) but its bytes go now:
        # metadata first, blobs later, through the queue (design principle 3).
        in_archive = archive_segments.c.archive_id == archive_id
        self._queue_blobs_from(archive_segments.c.blob_key, in_archive, now)
        self._run(delete(archive_segments).where(in_archive))

    def get_segments(self, archive_id: str) -> list[Segment]:
        return [_segment(r) for r in self._rows(_SEGMENTS, {"archive_id": archive_id})]

    def list_live_archives(self, vault_id: int, after_id: str | None, limit: int) -> list[Archive]:
        stmt = select(archives).where(
            archives.c.vault_id == vault_id, archives.c.removed_seq.is_(None)
        )
        if after_id is not None:
            stmt = stmt.where(archives.c.archive_id > after_id)
        stmt = stmt.order_by(archives.c.archive_id).limit(limit)
        return [archive_from_row(r) for r in self._rows(stmt)]

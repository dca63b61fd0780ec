"""Multipart uploads and their parts (spec 2.20-2.25)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, literal, select, update

from openglacier.errors import StorageError
from openglacier.records import Archive, Part, Upload, UploadState
from openglacier.storage.metadata.base import TxBase, after_position, values_of
from openglacier.storage.metadata.schema import archive_segments, archives, parts, uploads

ACTIVE = UploadState.ACTIVE.value

# Everything but leaf_hashes, which listings never need and which can be large.
_PART_SUMMARY = [c for c in parts.c if c.name != "leaf_hashes"]


def _upload(row: Row[Any]) -> Upload:
    fields = dict(row._mapping)
    return Upload(**{**fields, "state": UploadState(fields["state"])})


def _upload_values(upload: Upload) -> dict[str, Any]:
    return {**values_of(upload), "state": upload.state.value}


class UploadOps(TxBase):
    def insert_upload(self, upload: Upload) -> None:
        self._run(uploads.insert().values(_upload_values(upload)))

    def get_upload(self, upload_id: str, *, for_update: bool = False) -> Upload | None:
        stmt = select(uploads).where(uploads.c.upload_id == upload_id)
        row = self._first(stmt.with_for_update() if for_update else stmt)
        return None if row is None else _upload(row)

    def touch_upload(self, upload_id: str, now: datetime) -> None:
        self._run(
            update(uploads).where(uploads.c.upload_id == upload_id).values(last_activity_at=now)
        )

    def list_uploads(
        self, vault_id: int, after: tuple[datetime, str] | None, limit: int
    ) -> list[Upload]:
        stmt = select(uploads).where(uploads.c.vault_id == vault_id, uploads.c.state == ACTIVE)
        if after is not None:
            stmt = stmt.where(after_position(uploads.c.created_at, uploads.c.upload_id, after))
        stmt = stmt.order_by(uploads.c.created_at, uploads.c.upload_id).limit(limit)
        return [_upload(r) for r in self._rows(stmt)]

    def put_part(self, part: Part) -> None:
        self._lock_active_upload(part.upload_id)
        key = and_(parts.c.upload_id == part.upload_id, parts.c.first_byte == part.first_byte)
        old = self._first(select(parts.c.blob_key).where(key))
        if old is None:
            self._run(parts.insert().values(values_of(part)))
            return
        if old.blob_key != part.blob_key:
            self._queue_keys([old.blob_key], part.uploaded_at)
        self._run(update(parts).where(key).values(values_of(part)))

    def _lock_active_upload(self, upload_id: str) -> None:
        # Parts of one upload change one transaction at a time, and never once
        # it has ended (complete/end take the same row lock): a part added then
        # would be an orphan nothing ever cleans up, and its blob would leak.
        stmt = select(uploads.c.state).where(uploads.c.upload_id == upload_id)
        row = self._first(stmt.with_for_update())
        if row is None or row.state != ACTIVE:
            raise StorageError(f"upload {upload_id} is not active")

    def list_parts(self, upload_id: str, from_byte: int, limit: int) -> list[Part]:
        stmt = (
            select(*_PART_SUMMARY)
            .where(parts.c.upload_id == upload_id, parts.c.first_byte >= from_byte)
            .order_by(parts.c.first_byte)
            .limit(limit)
        )
        return [Part(**r._mapping) for r in self._rows(stmt)]

    def count_parts(self, upload_id: str) -> int:
        stmt = select(func.count()).where(parts.c.upload_id == upload_id)
        return int(self._scalar(stmt))

    def complete_upload(self, upload_id: str, archive: Archive, now: datetime) -> None:
        completed = self._end(
            upload_id,
            UploadState.COMPLETED,
            now,
            archive_id=archive.archive_id,
            archive_size=archive.size,
            archive_tree_hash=archive.tree_hash,
        )
        if not completed:
            # The caller holds the upload FOR UPDATE and saw it active; anything
            # else would insert an archive without segments.
            raise StorageError(f"upload {upload_id} is not active")
        self._run(archives.insert().values(values_of(archive)))
        # Server-side move: leaf hashes of a 10,000-part upload never visit Python.
        moved = select(
            literal(archive.archive_id, archive_segments.c.archive_id.type),
            func.row_number().over(order_by=parts.c.first_byte) - 1,
            parts.c.first_byte,
            parts.c.size,
            parts.c.blob_key,
            parts.c.leaf_hashes,
        ).where(parts.c.upload_id == upload_id)
        columns = ["archive_id", "seq", "offset", "size", "blob_key", "leaf_hashes"]
        self._run(archive_segments.insert().from_select(columns, moved))
        self._run(delete(parts).where(parts.c.upload_id == upload_id))

    def end_upload(self, upload_id: str, state: UploadState, now: datetime) -> None:
        """Idempotent: an upload that already ended (or is unknown) is left as is."""
        if state in (UploadState.ACTIVE, UploadState.COMPLETED):
            raise ValueError(f"end_upload cannot set state {state}; use complete_upload")
        if not self._end(upload_id, state, now):
            return
        of_upload = parts.c.upload_id == upload_id
        self._queue_blobs_from(parts.c.blob_key, of_upload, now)
        self._run(delete(parts).where(of_upload))

    def _end(self, upload_id: str, state: UploadState, now: datetime, **extra: Any) -> bool:
        """Move an active upload to `state`; False if it was not active."""
        ended = self._run(
            update(uploads)
            .where(uploads.c.upload_id == upload_id, uploads.c.state == ACTIVE)
            .values(state=state.value, ended_at=now, **extra)
        )
        return ended == 1

    def inactive_uploads(self, idle_since: datetime, limit: int) -> list[str]:
        stmt = (
            select(uploads.c.upload_id)
            .where(uploads.c.state == ACTIVE, uploads.c.last_activity_at <= idle_since)
            .order_by(uploads.c.last_activity_at, uploads.c.upload_id)
            .limit(limit)
        )
        return [str(r.upload_id) for r in self._rows(stmt)]

    def purge_ended_uploads(self, ended_before: datetime) -> int:
        return self._run(
            delete(uploads).where(uploads.c.state != ACTIVE, uploads.c.ended_at < ended_before)
        )

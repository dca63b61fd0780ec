"""Repointing blob references to a re-encrypted copy (storage/blob_rewrite.py).

Every column that names a blob as data moves from the old key to the new one
in one transaction, and the old key goes to the deletion queue, due only
later: a read that found the old key before the switch (a download, a job
checking its archive) goes on reading the old blob meanwhile.

Writers that copy a blob key from one table to another do it under a row
lock: completing a multipart upload (parts -> archive segments) holds the
upload row, completing a retrieval (archive segments -> job segments) holds
the archive row. Taking those locks first makes such a writer either finish
before the repoint (whose UPDATEs, new statements under READ COMMITTED, then
see the copied rows) or start after it (and copy the new key): never commit
the old key after it was queued. SQLite serialises writers anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, union, update

from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import (
    archive_segments,
    archives,
    blob_deletes,
    job_segments,
    jobs,
    parts,
    uploads,
)

# Every column naming a blob as data; keep in step with blobqueue._REFERENCING_COLUMNS.
_DATA_COLUMNS = (
    archive_segments.c.blob_key,
    parts.c.blob_key,
    job_segments.c.blob_key,
    jobs.c.output_blob_key,
)


class RepointOps(TxBase):
    def repoint_blob(self, old_key: str, new_key: str, delete_at: datetime) -> int:
        seg, prt = archive_segments.c, parts.c
        owners = select(seg.archive_id).where(seg.blob_key == old_key)
        self._rows(
            select(archives.c.archive_id).where(archives.c.archive_id.in_(owners)).with_for_update()
        )
        uploading = select(prt.upload_id).where(prt.blob_key == old_key)
        self._rows(
            select(uploads.c.upload_id).where(uploads.c.upload_id.in_(uploading)).with_for_update()
        )
        moved = 0
        for column in _DATA_COLUMNS:
            stmt = update(column.table).where(column == old_key).values({column.name: new_key})
            moved += self._run(stmt)
        # Queued already (its archive deleted, a pin naming it)? Then not sooner
        # than `delete_at` either: the pin's readers may be reading it now.
        queued = {"blob_key": old_key if moved else new_key, "queued_at": delete_at}
        insert = self._insert(blob_deletes).values(queued)
        self._run(insert.on_conflict_do_update(index_elements=["blob_key"], set_=queued))
        return moved

    def blob_named(self, key: str) -> bool:
        found = union(*(select(column).where(column == key) for column in _DATA_COLUMNS))
        return self._first(found) is not None

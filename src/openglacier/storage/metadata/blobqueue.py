"""The blob-deletion queue: metadata goes first, blobs later (design principle 3).

A key is queued in the transaction that drops the last reference to it; a
worker deletes the blob and then forgets the key. Deleting a blob twice is
harmless, so a crash between the two steps only repeats work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, or_, select, union

from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import (
    archive_segments,
    blob_deletes,
    job_segments,
    jobs,
    parts,
)

# Stay far below SQLite's bound-parameter limit in IN lists.
_CHUNK = 500
# referenced_blob_keys binds each key once per referencing column (5): below
# the 999 parameters of SQLite builds older than 3.32.
_REF_CHUNK = 190

# Every column that names a blob (schema.py: grep blob_key). A new one must be
# added here, or the orphan collector would delete the blobs it names.
_REFERENCING_COLUMNS = (
    archive_segments.c.blob_key,
    parts.c.blob_key,
    job_segments.c.blob_key,
    jobs.c.output_blob_key,
    blob_deletes.c.blob_key,
)


class BlobQueueOps(TxBase):
    def queue_blob_deletes(self, keys: Sequence[str], now: datetime) -> None:
        """Queue `keys`; a key already queued keeps its place."""
        self._queue_keys(keys, now)

    def pending_blob_deletes(self, limit: int, due: datetime | None = None) -> list[str]:
        """Queued keys nothing references any more.

        A finished retrieval pins its archive's blobs (job_segments) until it
        expires, even after DeleteArchive queued them. Pinned keys leave the
        queue here; whoever drops the last pin queues them again.
        """
        # Not only pins: a finished job releases pins on blobs its live archive still names.
        named = [exists().where(c == blob_deletes.c.blob_key) for c in _REFERENCING_COLUMNS[:-1]]
        self._run(delete(blob_deletes).where(or_(*named)))
        stmt = (
            select(blob_deletes.c.blob_key)
            .order_by(blob_deletes.c.queued_at, blob_deletes.c.blob_key)
            .limit(limit)
        )
        if due is not None:  # keys queued for later (blobs rewrite) wait their turn
            stmt = stmt.where(blob_deletes.c.queued_at <= due)
        return [str(r.blob_key) for r in self._rows(stmt)]

    def forget_blob_deletes(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            self._run(delete(blob_deletes).where(blob_deletes.c.blob_key.in_(chunk)))

    def referenced_blob_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` some row names (indexed lookups in every column).

        One UNION statement per chunk, not one query per table: under
        PostgreSQL's READ COMMITTED each statement has its own snapshot, and a
        completion moving a part's key into archive_segments between two
        queries would make the key look unreferenced.
        """
        found: set[str] = set()
        for start in range(0, len(keys), _REF_CHUNK):
            chunk = list(keys[start : start + _REF_CHUNK])
            stmt = union(
                *(select(column).where(column.in_(chunk)) for column in _REFERENCING_COLUMNS)
            )
            found.update(str(row[0]) for row in self._rows(stmt))
        return found

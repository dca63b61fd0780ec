"""The blob-deletion queue: metadata goes first, blobs later (design principle 3).

A key is queued in the transaction that drops the last reference to it; a
worker deletes the blob and then forgets the key. Deleting a blob twice is
harmless, so a crash between the two steps only repeats work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select

from openglacier.storage.metadata.base import TxBase
from openglacier.storage.metadata.schema import blob_deletes, job_segments

# Stay far below SQLite's bound-parameter limit in IN lists.
_CHUNK = 500


class BlobQueueOps(TxBase):
    def queue_blob_deletes(self, keys: Sequence[str], now: datetime) -> None:
        """Queue `keys`; a key already queued keeps its place."""
        self._queue_keys(keys, now)

    def pending_blob_deletes(self, limit: int) -> list[str]:
        """Queued keys nothing references any more.

        A finished retrieval pins its archive's blobs (job_segments) until it
        expires, even after DeleteArchive queued them. Pinned keys leave the
        queue here; whoever drops the last pin queues them again.
        """
        pinned = exists().where(job_segments.c.blob_key == blob_deletes.c.blob_key)
        self._run(delete(blob_deletes).where(pinned))
        stmt = (
            select(blob_deletes.c.blob_key)
            .order_by(blob_deletes.c.queued_at, blob_deletes.c.blob_key)
            .limit(limit)
        )
        return [str(r.blob_key) for r in self._rows(stmt)]

    def forget_blob_deletes(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            self._run(delete(blob_deletes).where(blob_deletes.c.blob_key.in_(chunk)))

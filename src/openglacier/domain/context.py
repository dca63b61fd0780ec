"""What every domain service needs: storage ports, the clock and timing.

Blocking storage calls run in worker threads (design 4) through `in_tx` and
`blocking`, so the event loop only ever awaits; on SQLite `in_tx` hands the
write to the store's one writer thread, which commits queued writes together
(storage/metadata/group_commit.py). The one exception is `in_read_tx` on
SQLite (short local reads, see its docstring).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

import anyio.to_thread

from openglacier.clock import Clock, TimingProfile
from openglacier.ports import BlobStore, MetadataStore, MetadataTx

T = TypeVar("T")

MAX_VAULTS_PER_REGION = 1000
ARCHIVE_OVERHEAD_BYTES = 32 * 1024  # spec 2.0: SizeInBytes counts 32 KiB per archive
MAX_ARCHIVE_SIZE = 4 * 1024**3  # UploadArchive, inclusive (spec 2.18 [R])
GC_BATCH = 500
# Unreferenced blobs younger than this are left alone (domain/orphans.py says why).
DEFAULT_ORPHAN_BLOB_MIN_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class Deps:
    store: MetadataStore
    blobs: BlobStore
    clock: Clock
    timing: TimingProfile
    partition: str = "aws"
    body_timeout: float = 60.0
    orphan_blob_min_age: timedelta = DEFAULT_ORPHAN_BLOB_MIN_AGE
    # Unfinished writes (temp files, S3 multipart uploads) older than this with
    # no progress belong to dead writers (server.py sets it from the body timeout).
    stale_temp_seconds: float = 3600.0

    async def in_tx(self, fn: Callable[[MetadataTx], T]) -> T:
        queued = self.store.submit_write(fn)
        if queued is None:
            return await anyio.to_thread.run_sync(partial(self._run_tx, fn))
        # As with a worker thread, a cancelled caller still waits for its
        # write's outcome: it may be committed whether or not anyone listens.
        with anyio.CancelScope(shield=True):
            result = await asyncio.wrap_future(queued)
        return result  # noqa: RET504 (returned inside the scope, mypy sees a path without)

    def _run_tx(self, fn: Callable[[MetadataTx], T]) -> T:
        with self.store.transaction() as tx:
            return fn(tx)

    async def in_read_tx(self, fn: Callable[[MetadataTx], T]) -> T:
        """A read-only snapshot: never takes the writer lock (SQLite) or writes (PG).

        For request-sized reads only (a row, a page). On SQLite they run right
        here on the event loop: an indexed read of a local WAL database takes
        tens of microseconds and never waits for a writer, while the hop to a
        worker thread and back (GIL hand-offs included) cost more than the read
        and halved small-request throughput (docs/performance.md). Long reads
        (inventory documents) open their own transaction in a worker.
        """
        if self.store.inline_reads:
            return self._run_read_tx(fn)
        return await anyio.to_thread.run_sync(partial(self._run_read_tx, fn))

    def _run_read_tx(self, fn: Callable[[MetadataTx], T]) -> T:
        with self.store.transaction(readonly=True) as tx:
            return fn(tx)

    async def blocking(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)

    def vault_arn(self, region: str, account_id: str, name: str) -> str:
        return f"arn:{self.partition}:glacier:{region}:{account_id}:vaults/{name}"

    def instant_inventory(self, tx: MetadataTx, vault_id: int) -> None:
        """With the instant profile, inventory follows every write (issue 2)."""
        if self.timing.inventory_interval is None:
            tx.take_inventory(vault_id, self.clock.now())

    async def collect_garbage(self) -> int:
        """Delete queued blobs: metadata went first, so these are unreferenced."""
        total = 0
        while True:
            due = self.clock.now()
            keys = await self.in_tx(partial(_pending, due=due))
            if not keys:
                return total
            await self.blocking(partial(self._delete_blobs, keys))
            await self.in_tx(partial(_forget, keys=keys))
            total += len(keys)
            if len(keys) < GC_BATCH:
                return total

    def _delete_blobs(self, keys: list[str]) -> None:
        for key in keys:
            self.blobs.delete(key)


def _pending(tx: MetadataTx, *, due: datetime) -> list[str]:
    return tx.pending_blob_deletes(GC_BATCH, due)


def _forget(tx: MetadataTx, *, keys: list[str]) -> None:
    tx.forget_blob_deletes(keys)

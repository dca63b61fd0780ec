"""Streaming a request body into a blob while hashing it (design 1.2, issue 2).

Memory stays constant whatever the body size: the body is cut into 1 MiB
batches and at most two batches are alive at once, one being received on the
event loop while the previous one is hashed and written in a worker thread
(hashlib and file writes release the GIL, so the two overlap).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from openglacier.domain.context import Deps
from openglacier.errors import GlacierError, RequestTimeoutException
from openglacier.ids import new_blob_key
from openglacier.ports import BlobInfo, BlobWriter
from openglacier.treehash import MIB, TreeHasher

_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="og-ingest")


@dataclass(frozen=True)
class Ingested:
    """A fully received, hashed, not yet committed body."""

    writer: BlobWriter
    size: int
    tree_hash: str
    sha256: str
    leaves: bytes

    def commit(self) -> BlobInfo:
        return self.writer.commit()


def _absorb(writer: BlobWriter, hasher: TreeHasher, data: bytes) -> None:
    hasher.update(data)
    writer.write(data)


async def _batches(
    body: AsyncIterator[bytes],
    max_bytes: int,
    too_long: Callable[[int], GlacierError],
    timeout: float,
) -> AsyncIterator[bytes]:
    """Re-chunk the body into 1 MiB batches, enforcing a size cap and a read timeout."""
    pending: list[bytes] = []
    filled = total = 0
    iterator = body.__aiter__()
    while True:
        try:
            with anyio.fail_after(timeout):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            break
        except TimeoutError:
            # Spec 1.8: 408 RequestTimeoutException, which botocore retries.
            raise RequestTimeoutException(
                "Your socket connection to the server was not read from or written to "
                "within the timeout period."
            ) from None
        total += len(chunk)
        if total > max_bytes:
            raise too_long(total)
        pending.append(chunk)
        filled += len(chunk)
        if filled >= MIB:
            yield b"".join(pending)
            pending, filled = [], 0
    if pending:
        yield b"".join(pending)


async def ingest(
    deps: Deps,
    body: AsyncIterator[bytes],
    *,
    max_bytes: int,
    too_long: Callable[[int], GlacierError],
) -> Ingested:
    writer = await deps.blocking(lambda: deps.blobs.create(new_blob_key()))
    hasher = TreeHasher()
    inflight: concurrent.futures.Future[None] | None = None
    try:
        async for batch in _batches(body, max_bytes, too_long, deps.body_timeout):
            if inflight is not None:
                await asyncio.wrap_future(inflight)
            inflight = _EXECUTOR.submit(_absorb, writer, hasher, batch)
        if inflight is not None:
            await asyncio.wrap_future(inflight)
            inflight = None
    except BaseException:
        await _discard(deps, writer, inflight)
        raise
    return Ingested(
        writer=writer,
        size=hasher.size,
        tree_hash=hasher.hexdigest(),
        sha256=hasher.sha256_hexdigest(),
        leaves=hasher.leaves(),
    )


async def _discard(
    deps: Deps, writer: BlobWriter, inflight: concurrent.futures.Future[None] | None
) -> None:
    """Abort the writer once no thread is still writing to it, even when cancelled."""

    def wait_and_abort() -> None:
        if inflight is not None:
            concurrent.futures.wait([inflight])
        writer.abort()

    with anyio.CancelScope(shield=True):
        await deps.blocking(wait_and_abort)


async def discard(deps: Deps, ingested: Ingested) -> None:
    with anyio.CancelScope(shield=True):
        await deps.blocking(ingested.writer.abort)

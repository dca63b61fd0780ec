"""Streaming a request body into a blob while hashing it (design 1.2, issue 2).

Memory stays constant whatever the body size: the body is cut into batches of
`BATCH` bytes, and at most `DEPTH` batches wait for the worker threads while
the event loop receives the next one. Every byte is hashed twice (the linear
SHA-256 that SigV4's x-amz-content-sha256 names, and the 1 MiB leaves of the
tree hash) and written once, so each batch goes to three lanes that run at the
same time: the linear hash, the leaves, the blob write. Each lane takes its
batches in order; hashlib and file writes release the GIL, so the loop and the
lanes use every core there is. With one thread doing all three, an upload ran
at half of one core's SHA-256 rate; the lanes and their depth are measured in
docs/performance.md ("Upload: hashing lanes").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

import anyio

from openglacier.domain.context import Deps
from openglacier.errors import GlacierError, RequestTimeoutException
from openglacier.ids import new_blob_key
from openglacier.ports import BlobInfo, BlobWriter
from openglacier.treehash import MIB, TreeHasher

_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="og-ingest")
# Bytes per hand-off to the lanes, and batches a lane may have queued. 1 MiB
# (one leaf) stays in the CPU caches while three lanes read it: 4 MiB batches
# cost a third more CPU per byte. Four deep lets the loop run ahead of a lane
# the scheduler left waiting; an upload holds at most about 5 MiB of body.
# Measured in docs/performance.md ("Upload: hashing lanes").
BATCH = 1 * MIB
DEPTH = 4


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


class _ReadTimeout:
    """Spec 1.8's 408 when the client sends nothing for `seconds`, without a timer
    per received chunk (a timer per chunk cost 5 % of the event loop's time in an
    upload). One `asyncio.Timeout` covers the whole body and is moved only when
    it is less than `seconds` away, so a client that stalls is cut off between
    `seconds` and 1.5 x `seconds` after its last byte. While the body waits for
    its own lanes (hashing, the store) the deadline is off: a slow store is not
    the client's fault."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.timeout = asyncio.timeout(None)

    def progress(self) -> None:
        now = self.loop.time()
        when = self.timeout.when()
        if when is None or when - now < self.seconds:
            self.timeout.reschedule(now + 1.5 * self.seconds)

    def pause(self) -> None:
        self.timeout.reschedule(None)

    def fired(self, error: BaseException) -> bool:
        return isinstance(error, TimeoutError) and self.timeout.expired()


def _after(previous: concurrent.futures.Future[None] | None, work: Callable[[], object]) -> None:
    """One lane's step: after the lane's step before it (so each hasher sees
    its batches in order), and failing when that one failed."""
    if previous is not None:
        previous.result()
    work()


class _Lanes:
    """The three lanes of one body: the linear SHA-256, the tree hash's leaves,
    and the blob write. Up to `DEPTH` batches per lane are in flight, so the loop
    keeps receiving while the lanes still have work queued."""

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer
        self.leaves = TreeHasher(linear=False)
        self.linear = hashlib.sha256()
        self.steps: tuple[Callable[[bytes], object], ...] = (
            self.linear.update,
            self.leaves.update,
            writer.write,
        )
        self.inflight: deque[tuple[concurrent.futures.Future[None], ...]] = deque()

    def futures(self) -> list[concurrent.futures.Future[None]]:
        return [future for steps in self.inflight for future in steps]

    async def _settle_oldest(self, clock: _ReadTimeout) -> None:
        steps = self.inflight[0]
        if not all(future.done() for future in steps):
            clock.pause()
            for future in steps:
                await asyncio.wrap_future(future)
            clock.progress()
        for future in steps:
            future.result()  # a lane's error
        self.inflight.popleft()

    async def drain(self, clock: _ReadTimeout) -> None:
        while self.inflight:
            await self._settle_oldest(clock)

    async def feed(self, batch: bytes, clock: _ReadTimeout) -> None:
        while len(self.inflight) >= DEPTH:
            await self._settle_oldest(clock)
        last = self.inflight[-1] if self.inflight else (None,) * len(self.steps)
        self.inflight.append(
            tuple(
                _EXECUTOR.submit(_after, previous, partial(step, batch))
                for previous, step in zip(last, self.steps, strict=True)
            )
        )


class _Batcher:
    """Re-chunks the body into `BATCH`-byte batches, enforcing the size cap."""

    def __init__(self, max_bytes: int, too_long: Callable[[int], GlacierError]) -> None:
        self.max_bytes = max_bytes
        self.too_long = too_long
        self.pending: list[bytes] = []
        self.filled = self.total = 0

    def add(self, chunk: bytes) -> bytes | None:
        """The next batch once `chunk` completes one."""
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise self.too_long(self.total)
        self.pending.append(chunk)
        self.filled += len(chunk)
        return self.rest() if self.filled >= BATCH else None

    def rest(self) -> bytes | None:
        batch = b"".join(self.pending) if self.pending else None
        self.pending, self.filled = [], 0
        return batch


async def ingest(
    deps: Deps,
    body: AsyncIterator[bytes],
    *,
    max_bytes: int,
    too_long: Callable[[int], GlacierError],
) -> Ingested:
    writer = await deps.blocking(lambda: deps.blobs.create(new_blob_key()))
    lanes = _Lanes(writer)
    batcher = _Batcher(max_bytes, too_long)
    clock = _ReadTimeout(deps.body_timeout)
    try:
        async with clock.timeout:
            clock.progress()
            async for chunk in body:
                clock.progress()
                batch = batcher.add(chunk)
                if batch is not None:
                    await lanes.feed(batch, clock)
            batch = batcher.rest()
            if batch is not None:
                await lanes.feed(batch, clock)
            await lanes.drain(clock)
    except BaseException as error:
        await _discard(deps, writer, lanes.futures())
        if clock.fired(error):
            # Spec 1.8: 408 RequestTimeoutException, which botocore retries.
            raise RequestTimeoutException(
                "Your socket connection to the server was not read from or written to "
                "within the timeout period."
            ) from None
        raise
    return Ingested(
        writer=writer,
        size=lanes.leaves.size,
        tree_hash=lanes.leaves.hexdigest(),
        sha256=lanes.linear.hexdigest(),
        leaves=lanes.leaves.leaves(),
    )


async def _discard(
    deps: Deps, writer: BlobWriter, inflight: list[concurrent.futures.Future[None]]
) -> None:
    """Abort the writer once no thread is still writing to it, even when cancelled."""

    def wait_and_abort() -> None:
        concurrent.futures.wait(inflight)
        writer.abort()

    with anyio.CancelScope(shield=True):
        await deps.blocking(wait_and_abort)


async def discard(deps: Deps, ingested: Ingested) -> None:
    with anyio.CancelScope(shield=True):
        await deps.blocking(ingested.writer.abort)

"""Verified archive reads: byte ranges read from blobs, checked leaf by leaf.

Blobs are read through the `BlobStore` port. The read functions use absolute
archive offsets, inclusive as on the wire; the ranges, windows and checksums a
job's output is served with are computed, without reading, in `ranges`.

`read_range` verifies on read (design 1.2): it reads whole leaves, SHA-256s each
one against its stored digest, and yields a leaf's bytes only once they have
been verified, so a damaged leaf never reaches a client. Partial leaves at the
edges of the requested range are read in full and sliced (at most 2 MiB of
extra reading per request), so every byte sent has been checked.

A retrieval job checks its whole range that way when it completes
(`verify_range`, called by jobs/executors.py): that is what a retrieval is.
Its output is then read with `trust_checked`: a blob whose store checks every
chunk it yields against a checksum or tag written with the blob
(`BlobReader.checked`, codecs 1+) raises before yielding damaged bytes, so its
bytes are passed on without a second SHA-256; a codec-0 blob (no such check)
is still verified leaf by leaf. The decision is per blob, so an archive whose
segments mix both is verified where it needs to be.

`WindowedRead` hands a download its bytes as windows of about `READ_WINDOW`
bytes, read in order on worker threads from one stream per download (each
blob opened once), while the event loop sends the window before.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from openglacier.domain import damage
from openglacier.domain.jobs.ranges import check_layout
from openglacier.errors import IntegrityError
from openglacier.ports import BlobStore
from openglacier.records import Segment
from openglacier.treehash import DIGEST_LEN, MIB

__all__ = [
    "read_range",
    "verify_range",
]

# --- verified segment reads --------------------------------------------------

# About this many bytes per worker-thread call: large enough that a thread hop
# per window costs nothing, small enough that a download holds little memory.
READ_WINDOW = 4 * MIB
# A download's first window (`WindowCursor.start_small`) is smaller, and the
# windows after it grow to READ_WINDOW: it is read before the status line goes
# out and nothing is sent meanwhile, so its size is latency every request pays
# (a client fetching an archive as 16 ranges pays it 16 times), while later
# windows are read while the one before is being sent.
FIRST_WINDOW = 1 * MIB
# A download whose client kept its stream idle this long gets a fresh one: a
# store's response stream (an S3 GET) may be dropped by the other end while
# nobody reads it.
IDLE_REOPEN = 5.0  # seconds

Span = tuple[int, int]  # inclusive byte offsets
Pieces = Callable[[int], Iterator[bytes]]  # the source's bytes from an offset to the end


class WindowCursor:
    """One download's reads: bytes [first, last] as consecutive windows of about
    `READ_WINDOW` bytes, in order, from one stream of pieces.

    One stream for the whole download means each blob is opened once, not once
    per window: opening a blob of codecs 1+ loads and checks its chunk index
    (and derives the key of an encrypted one; on S3, two GETs), which for a
    4 GiB blob costs more than reading a window of it. A stream left idle for
    `IDLE_REOPEN` seconds (a slow client) is reopened where it stopped.
    `next()` blocks: run it on a worker thread, one call at a time (any
    thread). IntegrityError (a damaged or missing blob) closes the cursor.
    """

    def __init__(
        self,
        span: Span,
        pieces_from: Pieces,
        failed: Callable[[IntegrityError], IntegrityError],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._next, self._last = span  # the next byte to return, the last one
        self._pieces_from = pieces_from
        self._failed = failed  # reports the damage; the error to raise
        self._clock = clock
        self._pieces: Iterator[bytes] | None = None
        self._used = 0.0  # when the stream last gave a window
        self._window = READ_WINDOW  # this call's size: doubles up to READ_WINDOW

    def next(self) -> list[bytes]:
        """The next window's pieces; [] once everything was read."""
        if self._next > self._last:
            return []
        if self._pieces is not None and self._clock() - self._used > IDLE_REOPEN:
            self.close()
        if self._pieces is None:
            self._pieces = self._pieces_from(self._next)
        window: list[bytes] = []
        size = 0
        try:
            while size < self._window and self._next + size <= self._last:
                piece = next(self._pieces)
                window.append(piece)
                size += len(piece)
        except IntegrityError as exc:
            self.close()
            failure = self._failed(exc)
            if failure is exc:
                raise
            raise failure from exc
        self._next += size
        self._window = min(2 * self._window, READ_WINDOW)
        self._used = self._clock()
        if self._next > self._last:
            self.close()  # everything read: release the blob now
        return window

    def start_small(self, size: int = FIRST_WINDOW) -> None:
        """Make the first window `size` bytes (about: whole store pieces), each
        later one twice the one before, up to READ_WINDOW; before any `next()`."""
        self._window = min(size, READ_WINDOW)

    def close(self) -> None:
        """Close the open blob reader, if any; not while `next()` runs."""
        pieces, self._pieces = self._pieces, None
        if pieces is not None:
            _close(pieces)


@dataclass(frozen=True)
class WindowedRead:
    """Bytes [first, last] of a source (absolute archive offsets for an archive),
    verified where the source is an archive; `open()` starts reading them."""

    first: int
    last: int
    open: Callable[[], WindowCursor]


def archive_read(
    blobs: BlobStore,
    segments: Sequence[Segment],
    first: int,
    last: int,
    *,
    vault: str = "(not given)",
    trust_checked: bool = False,
    on_damage: Callable[[str], None] | None = None,
) -> WindowedRead:
    """Verified archive bytes [first, last] (absolute) as a WindowedRead.

    A missing or damaged blob raises IntegrityError and is reported as damage
    to the archive in `vault` (domain/damage.py), then passed to `on_damage`
    (on the reading thread; say, to record it). `trust_checked`: see
    `read_range`; only for bytes already verified against their leaf hashes.
    """
    check_layout(segments)
    # Only the segments the range touches: an archive may have thousands.
    starts = [segment.offset for segment in segments]
    archive_id = segments[0].archive_id

    def pieces_from(position: int) -> Iterator[bytes]:
        run = segments[
            bisect.bisect_right(starts, position) - 1 : bisect.bisect_right(starts, last)
        ]
        return read_range(blobs, run, position, last, verify=True, trust_checked=trust_checked)

    def failed(exc: IntegrityError) -> IntegrityError:
        damage.report(archive_id, vault, str(exc))
        if on_damage is not None:
            on_damage(str(exc))
        if str(exc).startswith(f"Archive {archive_id} "):  # damage.missing_blob's
            return exc
        # The client's 500 names the archive too, not only our blob.
        return IntegrityError(f"Archive {archive_id} is damaged: {exc}")

    return WindowedRead(first, last, lambda: WindowCursor((first, last), pieces_from, failed))


def blob_read(blobs: BlobStore, key: str, first: int, last: int) -> WindowedRead:
    """Bytes [first, last] of one blob (a job's output), unverified by us (the
    store checks what it can), as a WindowedRead."""

    def pieces_from(position: int) -> Iterator[bytes]:
        return _blob_pieces(blobs, key, position, last)

    return WindowedRead(
        first, last, lambda: WindowCursor((first, last), pieces_from, lambda error: error)
    )


def _blob_pieces(blobs: BlobStore, key: str, first: int, last: int) -> Iterator[bytes]:
    try:
        reader = blobs.open(key, first, last + 1)
    except FileNotFoundError:  # BlobStore.open's answer for a missing blob
        damage.log.error("job output blob %s is missing", key)
        raise IntegrityError(f"The job output is damaged: blob {key} is missing") from None
    try:
        yield from reader
    finally:
        _close(reader)


def _close(reader: Iterator[bytes]) -> None:
    close = getattr(reader, "close", None)
    if callable(close):
        close()


def verify_range(
    blobs: BlobStore,
    segments: Sequence[Segment],
    first: int,
    last: int,
    checkpoint: Callable[[], None] = lambda: None,
) -> str | None:
    """Read archive bytes [first, last] and check every leaf against its stored
    SHA-256, keeping nothing: a retrieval job's check when it completes.

    None if every byte is intact; else what is wrong, naming the first missing,
    damaged or truncated blob (an IntegrityError's message). `checkpoint` is
    called after every leaf (a worker thread's cancellation check: a long
    verification must not hold up a shutdown).
    """
    try:
        for _ in read_range(blobs, segments, first, last, verify=True):
            checkpoint()
    except IntegrityError as exc:
        return str(exc)
    return None


def read_range(
    blobs: BlobStore,
    segments: Sequence[Segment],
    first: int,
    last: int,
    *,
    verify: bool = True,
    trust_checked: bool = False,
) -> Iterator[bytes]:
    """Archive bytes [first, last] (absolute, inclusive), streamed in ~1 MiB chunks.

    `segments` must be contiguous and in offset order; they may be a run of an
    archive's segments rather than all of them, as long as they cover the range.
    Arguments are checked now; blobs are opened lazily, one at a time, and each
    reader is closed when its segment is done or the iterator is closed.

    With `verify`, whole leaves are read (the range is widened to leaf
    boundaries, then sliced) and each is compared with its stored digest before
    any of its bytes are yielded; a mismatch raises IntegrityError naming the
    blob and leaf. A blob that yields fewer or more bytes than its segment says
    raises IntegrityError either way.

    With `trust_checked` as well, a blob whose reader is `checked` (its store
    raises IntegrityError before yielding a chunk that fails the checksum or
    tag written with it) is passed on as the store yields it, without SHA-256.
    Only for bytes that were verified against their leaf hashes once already
    (a completed retrieval job's): the per-chunk check then proves they are
    still the bytes that were verified.
    """
    start, end = check_layout(segments)
    if not (start <= first <= last < end):
        raise ValueError(f"range {first}-{last} is outside the segments' bytes {start}-{end - 1}")
    if verify:
        low = first - first % MIB
        high = min(last + 1 + (-(last + 1)) % MIB, end)
    else:
        low, high = first, last + 1
    return _read(blobs, segments, (low, high), (first, last + 1), (verify, trust_checked))


def _read(
    blobs: BlobStore,
    segments: Sequence[Segment],
    read: tuple[int, int],
    wanted: tuple[int, int],
    checks: tuple[bool, bool],
) -> Iterator[bytes]:
    """Read archive bytes [low, high) and yield the part inside [first, stop)."""
    (low, high), (first, stop) = read, wanted
    for segment in segments:
        seg_end = segment.offset + segment.size
        if seg_end <= low:
            continue
        if segment.offset >= high:
            break
        a, b = max(low, segment.offset) - segment.offset, min(high, seg_end) - segment.offset
        for position, piece in _segment_pieces(blobs, segment, a, b, checks):
            head = max(first - position, 0)
            tail = min(stop - position, len(piece))
            if head >= tail:
                continue  # a store chunk wholly in the widened edges (unhashed reads)
            yield piece if head == 0 and tail == len(piece) else piece[head:tail]


def _segment_pieces(
    blobs: BlobStore, segment: Segment, a: int, b: int, checks: tuple[bool, bool]
) -> Iterator[tuple[int, bytes]]:
    """(absolute offset, bytes) pieces of segment payload [a, b); whole verified
    leaves when the blob is to be hashed (then a and b lie on leaf boundaries
    or b is the end), else the store's chunks as they come."""
    verify, trust_checked = checks
    try:
        reader = blobs.open(segment.blob_key, a, b)
    except FileNotFoundError:  # BlobStore.open's answer for a missing blob
        raise damage.missing_blob(segment) from None
    # The store's per-chunk check stands in for SHA-256 only when asked to.
    verify = verify and not (trust_checked and reader.checked)
    position = a
    try:
        pieces = _leaves_of(reader, a, b, segment.blob_key) if verify else reader
        for piece in pieces:
            if position + len(piece) > b:
                raise IntegrityError(
                    f"blob {segment.blob_key}: returned more than the {b - a} bytes asked for"
                )
            if verify:
                _verify_leaf(segment, position, piece)
            yield segment.offset + position, piece
            position += len(piece)
    finally:
        _close(reader)
    if position != b:
        raise IntegrityError(
            f"blob {segment.blob_key}: ended at payload byte {position}, expected {b}"
            " (truncated blob)"
        )


def _leaves_of(chunks: Iterable[bytes], a: int, b: int, key: str) -> Iterator[bytes]:
    """Regroup `chunks` (payload [a, b), any chunk sizes) into whole leaves.

    Pieces end at every MiB boundary and at b. A chunk that already is exactly
    the next leaf (the filesystem store reads MiB-aligned) is passed on without
    copying; otherwise at most one leaf is buffered. A trailing partial leaf is
    dropped: the caller reports the shortfall.
    """
    leaf_start = a
    want = min(MIB - a % MIB, b - a)
    buffer = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        if not buffer and len(chunk) == want:
            yield bytes(chunk)
            leaf_start += want
            want = min(MIB, b - leaf_start)
            continue
        view = memoryview(chunk).cast("B")
        while view:
            if want == 0:
                raise IntegrityError(f"blob {key}: returned more than the {b - a} bytes asked for")
            take = min(want - len(buffer), len(view))
            buffer += view[:take]
            view = view[take:]
            if len(buffer) == want:
                yield bytes(buffer)
                buffer.clear()
                leaf_start += want
                want = min(MIB, b - leaf_start)


def _verify_leaf(segment: Segment, position: int, leaf: bytes) -> None:
    index = position // MIB
    expected = segment.leaf_hashes[index * DIGEST_LEN : (index + 1) * DIGEST_LEN]
    if hashlib.sha256(leaf).digest() != expected:
        absolute = segment.offset + position
        raise IntegrityError(
            f"blob {segment.blob_key}: leaf {index} (archive bytes {absolute}-"
            f"{absolute + len(leaf) - 1}) does not match its stored SHA-256"
        )

"""Reading S3 blobs: ranged GETs issued ahead, and a small cache of layouts.

`ReadAhead` is the `FrameSource` (codecs/stream.py) of an S3 blob reader. It
cuts the frames a read needs into ranged GETs of about `GET_SPAN` bytes and
keeps the next GET running on the store's thread pool while the reader
consumes the current one, so the wire to the store stays busy while the
caller is sending (GetJobOutput) or checking. Each GET's body is read in
pieces that end where the reader's reads end (a frame, or a payload MiB for
codec 0), so a read is the bytes the socket read produced, not a copy.
Memory per reader: two GETs' bytes (`GET_SPAN` each) at most. A GET runs to
its end whatever the reader does, so a slow client leaves no stream idle on
the store's side (the window cursor's idle reopen is then only a fallback).

A body that ends before its Content-Length is a dropped connection: an
outage (`StorageError`), never damage; only an object shorter than the
layout says (a shorter Content-Length) is `IntegrityError`.

`LayoutCache` keeps the checked layouts (header and chunk index) of recently
opened blobs with the ETag they were read from, so an open with a cached
layout costs one GET (the data's, with ``If-Match: ETAG``) instead of three.
Blob keys are fresh random ids, but a key's object can still be replaced:
the scrubber's repair (`ReplicatedBlobStore.restore`) and `blobs migrate`
delete a damaged copy and write it anew under the same key, possibly encoded
differently. A replaced object has another ETag, so its GET fails the
precondition (412) and the open reads the layout again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from openglacier.errors import IntegrityError, StorageError
from openglacier.storage.blobs.codecs.stream import READ_CHUNK, BlobLayout
from openglacier.storage.blobs.format import HEADER_LEN

__all__ = [
    "GET_SPAN",
    "BlobReplacedError",
    "LayoutCache",
    "ReadAhead",
    "ended_early",
    "object_size",
    "piece_ends",
    "read_body",
    "read_pieces",
]

GET_SPAN = 8 << 20  # bytes per ranged GET of a read (whole frames; at least one)
CACHE_BYTES = 4 << 20  # index bytes the layout cache keeps, over all its entries
CACHE_ENTRIES = 256

# ((offset, end), piece lengths, stop) -> the body's pieces; runs on the store's pool.
Fetch = Callable[[tuple[int, int], list[int], threading.Event], list[bytes]]


class BlobReplacedError(StorageError):
    """The object under the key is not the one whose layout was read (its ETag
    changed: repaired or re-copied since); reading it again reads the new one."""


def piece_ends(layout: BlobLayout, start: int, stop: int) -> Iterator[int]:
    """File offsets where PayloadReader's reads of payload [start, stop) end:
    each frame's end (codecs 1+), else each payload MiB boundary and stop."""
    index = layout.index
    if index is None:
        position = start
        while position < stop:
            position = min(position + READ_CHUNK - position % READ_CHUNK, stop)
            yield HEADER_LEN + position
        return
    cs = layout.header.chunk_size
    for number in range(start // cs, (stop - 1) // cs + 1):
        yield index.frame_span(number)[1]


def read_pieces(body: Any, key: str, lengths: list[int], stop: threading.Event) -> list[bytes]:
    """A ranged GET's body as pieces of `lengths` bytes; StorageError if it ends
    early (the connection dropped), or `stop` is set (the reader closed)."""
    pieces: list[bytes] = []
    try:
        for length in lengths:
            piece = body.read(length)
            while len(piece) < length:  # a short read: more may follow, or the end
                if stop.is_set():
                    raise StorageError(f"blob {key}: read abandoned")
                more = body.read(length - len(piece))
                if not more:
                    raise StorageError(
                        f"blob {key}: the connection to the store ended the response early"
                    )
                piece += more
            pieces.append(piece)
            if stop.is_set():
                break
    finally:
        body.close()
    return pieces


def read_body(body: Any) -> bytes:
    try:
        return bytes(body.read())
    finally:
        body.close()


class ReadAhead:
    """Object bytes [first, last piece end) of one blob, for PayloadReader; see
    the module docstring. `submit` runs a fetch on the store's pool."""

    def __init__(
        self,
        key: str,
        first: int,
        ends: Iterator[int],
        fetch: Fetch,
        submit: Callable[..., Future[list[bytes]]],
    ) -> None:
        self._key = key
        self._next = first  # where the next GET starts
        self._ends = ends
        self._fetch, self._submit = fetch, submit
        self._stop = threading.Event()
        self._pieces: deque[bytes] = deque()
        self._ahead: Future[list[bytes]] | None = None
        self._schedule()

    def _schedule(self) -> None:
        """Start the next GET: whole pieces, GET_SPAN bytes or the first piece past it."""
        start, lengths = self._next, []
        for end in self._ends:
            lengths.append(end - self._next)
            self._next = end
            if self._next - start >= GET_SPAN:
                break
        self._ahead = None
        if lengths:
            self._ahead = self._submit(self._fetch, (start, self._next), lengths, self._stop)

    def prime(self) -> None:
        """Wait for the first GET: its errors (a missing or replaced object) now."""
        if not self._pieces:
            self._refill()

    def read(self, n: int) -> bytes:
        if self._pieces and len(self._pieces[0]) == n:
            return self._pieces.popleft()  # the usual case: one piece, as read
        out = bytearray()
        while len(out) < n:
            if not self._pieces:
                self._refill()
            piece = self._pieces.popleft()
            take = n - len(out)
            if take < len(piece):
                self._pieces.appendleft(piece[take:])
                piece = piece[:take]
            out += piece
        return bytes(out)

    def _refill(self) -> None:
        ahead = self._ahead
        if ahead is None:
            raise IntegrityError(f"blob {self._key}: read past the frames it holds")
        self._pieces.extend(ahead.result())  # StorageError, BlobNotFoundError...
        self._schedule()

    def close(self) -> None:
        """Drop what was read; a GET still running stops at its next piece."""
        self._stop.set()
        self._pieces.clear()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and not ahead.cancel():
            ahead.add_done_callback(_retrieve)


def _retrieve(future: Future[list[bytes]]) -> None:
    future.exception()  # nobody waits for an abandoned GET's outcome


class LayoutCache:
    """Layouts of recently opened blobs with their ETags, least recently used
    out first, bounded by entries and by index bytes; thread-safe."""

    def __init__(self, max_bytes: int = CACHE_BYTES, max_entries: int = CACHE_ENTRIES) -> None:
        self._max_bytes, self._max_entries = max_bytes, max_entries
        self._entries: OrderedDict[str, tuple[str, BlobLayout, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, BlobLayout] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0], found[1]

    def put(self, key: str, etag: str, layout: BlobLayout) -> None:
        cost = 0 if layout.index is None else len(layout.index.entries)
        if not etag or cost > self._max_bytes:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = (etag, layout, cost)
            self._bytes += cost
            while self._bytes > self._max_bytes or len(self._entries) > self._max_entries:
                self._drop(next(iter(self._entries)))

    def forget(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= found[2]


def ended_early(key: str, got: dict[str, Any], expected: int) -> None:
    """IntegrityError if the GET's Content-Length says the object is shorter
    than the layout promises (truncated), rather than the connection dropping."""
    length = got.get("ContentLength")
    if isinstance(length, int) and length < expected:
        raise IntegrityError(
            f"blob {key}: object ended early: {length} of {expected} bytes asked for"
        )


def object_size(got: dict[str, Any], fallback: int) -> int:
    """The whole object's size, from a ranged GET's Content-Range ("bytes 0-31/SIZE")."""
    content_range = str(got.get("ContentRange") or "")
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else fallback

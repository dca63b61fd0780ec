"""Reading S3 blobs: one ranged GET per read, and a small cache of layouts.

`BodySource` is the `FrameSource` (codecs/stream.py) of an S3 blob reader:
the body of one ranged GET covering the frames a read touches, read on the
reader's thread. A body that ends before its Content-Length is a dropped
connection: an outage (`StorageError`), never damage; only an object shorter
than the layout says (a shorter Content-Length: `ended_early`) is
`IntegrityError`.

One GET per read, not a chain of smaller GETs issued ahead: botocore spends
about 2-3 ms of CPU on every request, so 8 MiB GETs kept one ahead on the
store's pool cost 0.5-0.8 CPU-seconds per GiB read against 0.15-0.2 for one
streaming GET, and read slower on this machine's two cores (measured with
SeaweedFS, 512 MiB, issue 13). That one stream is read ahead instead, on a
thread per reader, up to `READ_AHEAD` bytes (`BodySource`).

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

import queue
import threading
from collections import OrderedDict
from typing import Any

from openglacier.errors import IntegrityError, StorageError
from openglacier.storage.blobs.codecs.stream import BlobLayout
from openglacier.storage.blobs.s3_client import s3_errors

__all__ = [
    "BlobReplacedError",
    "BodySource",
    "LayoutCache",
    "ended_early",
    "object_size",
    "read_body",
]

READ_AHEAD = 8 << 20  # body bytes a reader's pump may hold ahead of it
PIECE = 1 << 20  # one read of the body (a codec-1 frame: handed on as it is)
CACHE_BYTES = 4 << 20  # index bytes the layout cache keeps, over all its entries
CACHE_ENTRIES = 256


class BlobReplacedError(StorageError):
    """The object under the key is not the one whose layout was read (its ETag
    changed: repaired or re-copied since); reading it again reads the new one."""


class BodySource:
    """One ranged GET's streaming body, for PayloadReader, read ahead on a
    thread of its own.

    The pump thread reads the body in `PIECE` reads into a queue of at most
    `READ_AHEAD` bytes, so the store keeps sending while the download's reader
    waits for the loop to send the previous window. Without it the store's
    stream stopped whenever the socket buffer was full, and a stopped SeaweedFS
    stream restarts slowly (gateway, filer and volume server in turn). The
    pump closes the body when it ends, fails, or the source is closed.
    """

    def __init__(self, body: Any, key: str, read_ahead: int = READ_AHEAD) -> None:
        self._key = key
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(
            max(1, read_ahead // PIECE)
        )
        self._stop = threading.Event()
        self._head = b""  # the unread rest of the piece being consumed
        self._pump_thread = threading.Thread(
            target=self._pump, args=(body,), name="og-s3-read", daemon=True
        )
        self._pump_thread.start()

    def _pump(self, body: Any) -> None:
        try:
            while not self._stop.is_set():
                with s3_errors(f"reading blob {self._key}"):
                    data = body.read(PIECE)
                self._queue.put(bytes(data) if data else None)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._queue.put(exc)
        finally:
            body.close()

    def read(self, n: int) -> bytes:
        if len(self._head) == n:  # the usual case: a 1 MiB frame, no copy
            data, self._head = self._head, b""
            return data
        pieces: list[bytes] = []
        wanted = n
        while wanted:
            if not self._head:
                self._head = self._next()
            take = self._head[:wanted]
            self._head = self._head[len(take) :]
            pieces.append(take)
            wanted -= len(take)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _next(self) -> bytes:
        item = self._queue.get()  # bounded: the pump's reads time out (READ_TIMEOUT)
        if isinstance(item, BaseException):
            self._queue.put(item)  # every later read fails the same way
            raise item
        if item is None:
            self._queue.put(None)
            # The Content-Length was checked at open (ended_early): the
            # connection dropped, the object did not shrink.
            raise StorageError(
                f"blob {self._key}: the connection to the store ended the response early"
            )
        return item

    def close(self) -> None:
        """Stop the pump: it closes the body after its current read."""
        self._stop.set()
        self._head = b""
        while True:  # room for a pump blocked on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return


def read_body(body: Any) -> bytes:
    try:
        return bytes(body.read())
    finally:
        body.close()


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

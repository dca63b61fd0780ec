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
SeaweedFS, 512 MiB, issue 13). The stream is read ahead anyway, by the
kernel: the socket buffer keeps filling while the reader's caller is busy
sending the previous window.

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

CACHE_BYTES = 4 << 20  # index bytes the layout cache keeps, over all its entries
CACHE_ENTRIES = 256


class BlobReplacedError(StorageError):
    """The object under the key is not the one whose layout was read (its ETag
    changed: repaired or re-copied since); reading it again reads the new one."""


class BodySource:
    """One ranged GET's streaming body, for PayloadReader."""

    def __init__(self, body: Any, key: str) -> None:
        self._body, self._key = body, key

    def read(self, n: int) -> bytes:
        with s3_errors(f"reading blob {self._key}"):
            data = self._body.read(n)
            while len(data) < n:  # a short read: more may follow, or the end
                more = self._body.read(n - len(data))
                if not more:
                    # The Content-Length was checked at open (ended_early): the
                    # connection dropped, the object did not shrink.
                    raise StorageError(
                        f"blob {self._key}: the connection to the store ended the response early"
                    )
                data += more
        return bytes(data)

    def close(self) -> None:
        self._body.close()


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

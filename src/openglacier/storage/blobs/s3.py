"""S3 blob store: archive bytes on any S3-compatible object store (design 1.4, 4).

Layout: blob ``KEY`` is object ``PREFIX + KEY`` in the bucket of
``s3+http(s)://HOST:PORT/BUCKET[/PREFIX]`` (s3_client.py), in the same format
as a blob file (format.py: 32-byte header, then frames and chunk index for
codecs 1+), encoded as the store's `CodecConfig` says (codecs/stream.py does
the encoding and checking for both stores), so a blob copies between the two
stores byte for byte.

Contract (on top of `openglacier.ports.BlobStore` and the shared rules in
`openglacier.storage.blobs`):

- Write path, in constant memory: a blob that ends within the first
  `FIRST_PART_SIZE` (5 MiB, S3's minimum part) bytes is one PutObject at
  commit. A larger one becomes a multipart upload: parts 2, 3... (`PART_SIZE`)
  are sent as they fill, at most
  `MAX_PARTS_IN_FLIGHT` at a time on the store's thread pool, while part 1
  (header + first body bytes) is held back until commit, because the header
  records the payload length and the index offset (format.py). Commit appends
  the chunk index, then sends part 1 and completes the upload. Memory per
  writer: at most ``2 + MAX_PARTS_IN_FLIGHT`` part buffers, preallocated and
  reused (S3BlobWriter), plus the codecs' few chunks (codecs/stream.py).
- Commit makes the object visible atomically (S3 never shows a partial
  object) and never replaces one: PutObject and CompleteMultipartUpload carry
  ``If-None-Match: *``, so an existing key fails with 412 and
  `BlobAlreadyExistsError`. A 412 after botocore retried the request may be
  our own first attempt having landed: that is reported as `StorageError`
  (the caller fails the request; the object, unreferenced, is an orphan for
  the orphan collector) rather than as a key collision.
- `abort()` aborts the multipart upload, leaving no object and no upload.
  Uploads of writers that died (crash, SIGKILL) stay in the bucket, invisible
  to readers, until `sweep_temp()` aborts them: every process calls it at
  start, and it only aborts uploads initiated more than `older_than` seconds
  ago with no part sent in that time, so live writers of other nodes are
  never touched.
- `open()` reads and checks the header and the chunk index eagerly (two
  ranged GETs; one for codec 0), so a missing blob raises `BlobNotFoundError`
  and a damaged one `IntegrityError` at call time. Layouts are then cached
  with the object's ETag (s3_reader.py `LayoutCache`): a later open of the
  same key is one GET, the data's, with ``If-Match``, whose answer (404, or
  412 for an object written anew under the key by a repair) is awaited
  before `open()` returns. The frames of the chunks the range touches then
  stream from that one ranged GET (s3_reader.py says why not several), each
  chunk checked before it is yielded, in pieces of at most 1 MiB aligned to
  payload MiB boundaries (tree-hash leaves, spec 3.1). A body that ends
  before its Content-Length (a dropped connection) is `StorageError`, never
  `IntegrityError`.
- `scan()` is ListObjectsV2 from ``PREFIX + after``: S3 lists in key order,
  and LastModified is the store's own clock, as the orphan collector wants.
- Errors: as the filesystem store; any failure of the endpoint (down,
  refusing, timing out) is `StorageError`, which the API answers with a 5xx
  ServiceUnavailableException.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from openglacier.errors import IntegrityError
from openglacier.metrics import metered_blob_call
from openglacier.ports import BlobEntry, BlobInfo
from openglacier.storage.blobs import (
    BlobNotFoundError,
    check_key,
    is_valid_key,
)
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.stream import (
    BlobLayout,
    PayloadReader,
    load_layout,
)
from openglacier.storage.blobs.format import HEADER_LEN
from openglacier.storage.blobs.s3_client import (
    S3Credentials,
    S3Location,
    ensure_bucket,
    error_code,
    make_client,
    s3_errors,
)
from openglacier.storage.blobs.s3_reader import (
    BlobReplacedError,
    BodySource,
    LayoutCache,
    ended_early,
    object_size,
    read_body,
)
from openglacier.storage.blobs.s3_writer import MAX_PARTS_IN_FLIGHT, PART_SIZE, S3BlobWriter

__all__ = ["MAX_PARTS_IN_FLIGHT", "PART_SIZE", "S3BlobStore", "S3BlobWriter"]

log = logging.getLogger(__name__)

_UPLOAD_THREADS = 16
_POOL = 64  # connections: uploads in flight plus readers held open by downloads
_LIST_PAGE = 1000


class S3BlobStore:
    """`BlobStore` on an S3-compatible bucket; see the module docstring."""

    def __init__(
        self,
        location: S3Location,
        credentials: S3Credentials | None = None,
        *,
        part_size: int = PART_SIZE,
        codecs: CodecConfig | None = None,
    ) -> None:
        credentials = credentials or S3Credentials()
        self.codecs = codecs or CodecConfig()
        if part_size < 5 << 20:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.location = location
        self.part_size = part_size
        self.bucket = location.bucket
        self.client = make_client(location, credentials, _POOL)
        self._pool = ThreadPoolExecutor(_UPLOAD_THREADS, thread_name_prefix="s3-part")
        self._layouts = LayoutCache()
        try:
            ensure_bucket(self.client, location, credentials.region)
        except BaseException:
            self.close()
            raise

    def object_key(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    # --- writing ------------------------------------------------------------
    def create(self, key: str) -> S3BlobWriter:
        return S3BlobWriter(self, check_key(key))

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        return self._pool.submit(fn, *args)

    # --- reading ------------------------------------------------------------
    def _get(self, key: str, first: int, last: int, etag: str = "") -> dict[str, Any]:
        args: dict[str, Any] = {"Range": f"bytes={first}-{last}"}
        if etag:
            args["IfMatch"] = etag
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key), **args)
        except ClientError as exc:
            if etag and error_code(exc) in ("PreconditionFailed", "412"):
                raise BlobReplacedError(f"blob {key}: replaced while being read") from None
            raise
        return dict(got)

    def _layout(self, key: str) -> tuple[BlobLayout, str] | None:
        """The checked header and index (codecs/stream.py) and the ETag they were
        read from, or None if there is no such object: one ranged GET for the
        header, one for the index."""
        with s3_errors(f"reading blob {key}"):
            try:
                got = self._get(key, 0, HEADER_LEN - 1)
            except ClientError as exc:
                code = error_code(exc)
                if code in ("NoSuchKey", "404", "NotFound"):
                    return None
                if code == "InvalidRange":  # an empty object: not even a header
                    raise IntegrityError(f"blob {key}: truncated header (0 bytes)") from None
                raise
            etag = str(got.get("ETag") or "")
            head = read_body(got["Body"])

            def read_at(offset: int, end: int) -> bytes:
                with s3_errors(f"reading blob {key}", key):  # deleted since the header's GET
                    return read_body(self._get(key, offset, end - 1, etag)["Body"])

            layout = load_layout(key, head, object_size(got, len(head)), read_at)
        self._layouts.put(key, etag, layout)
        return layout, etag

    @metered_blob_call("s3", "get")
    def open(self, key: str, start: int = 0, end: int | None = None) -> PayloadReader:
        check_key(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid range [{start}, {end}) for blob {key}")
        cached = self._layouts.get(key)
        # Only a GET proves the cached object is still there: not for an empty range.
        stop = start + 1 if end is None else end
        if cached is not None and start < min(stop, cached[1].header.payload_length):
            try:
                return self._reader(key, cached[1], cached[0], start, end)
            except (BlobReplacedError, BlobNotFoundError):
                self._layouts.forget(key)  # read the layout again, as for any other key
        found = self._layout(key)
        if found is None:
            raise BlobNotFoundError(errno.ENOENT, "no such blob", key)
        return self._reader(key, found[0], found[1], start, end)

    def _reader(
        self, key: str, layout: BlobLayout, etag: str, start: int, end: int | None
    ) -> PayloadReader:
        """A reader of payload [start, end): one ranged GET of the frames it
        touches (If-Match: the object the layout was read from)."""
        size = layout.header.payload_length
        if start > size:
            raise ValueError(f"range start {start} beyond blob {key} of {size} bytes")
        stop = size if end is None else min(end, size)
        source = None
        if stop > start:
            first, after = layout.file_span(start, stop)
            with s3_errors(f"reading blob {key}", key):
                got = self._get(key, first, after - 1, etag)
            source = BodySource(got["Body"], key)
        try:
            if source is not None:
                ended_early(key, got, after - first)
            return PayloadReader(layout, self.codecs.keyring, start, stop, source)
        except BaseException:  # MissingKeyError: the blob's key is not configured
            if source is not None:
                source.close()
            raise

    @metered_blob_call("s3", "stat")
    def stat(self, key: str) -> BlobInfo | None:
        found = self._layout(check_key(key))
        return None if found is None else found[0].info

    def keys(self) -> Iterator[str]:
        """Committed keys, in key order, listed a page at a time."""
        after: str | None = None
        while page := self.scan(after, _LIST_PAGE):
            yield from (entry.key for entry in page)
            after = page[-1].key

    @metered_blob_call("s3", "scan")
    def scan(self, after: str | None, limit: int) -> list[BlobEntry]:
        if limit < 1:
            raise ValueError(f"scan limit must be positive, not {limit}")
        prefix = self.location.prefix
        start = prefix + check_key(after) if after is not None else ""
        found: list[BlobEntry] = []
        token: str | None = None
        with s3_errors("listing blobs"):
            while len(found) < limit:
                args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
                if token:
                    args["ContinuationToken"] = token
                elif start:
                    args["StartAfter"] = start
                page = self.client.list_objects_v2(**args)
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(prefix) :]
                    # Anything else under the prefix is not ours ("dir/x", stray uploads).
                    if is_valid_key(name) and len(found) < limit:
                        found.append(BlobEntry(name, item["LastModified"].astimezone(UTC)))
                token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
                if not token:
                    break
        return found

    # --- deleting -----------------------------------------------------------
    @metered_blob_call("s3", "delete")
    def delete(self, key: str) -> None:
        self._layouts.forget(key)
        with s3_errors(f"deleting blob {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def sweep_temp(self, older_than: float | None = None, *, now: datetime | None = None) -> int:
        """Abort multipart uploads of writers that never finished; returns the count.

        An upload goes if it was initiated more than `older_than` seconds ago
        and no part of it was sent since (a live writer sends a part at least
        every few body timeouts); with `older_than=None` every upload under the
        prefix goes (only for a store no other process uses). Ages compare the
        store's timestamps with this host's wall clock (design 1.5 allows
        wall-clock reads for timestamps of outside systems): keep clocks in
        sync (NTP), as the age bound is meant to be hours. `now`: tests only.
        """
        cutoff = None
        if older_than is not None:
            cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than)
        aborted = 0
        with s3_errors("sweeping stale multipart uploads"):
            for name, upload_id, initiated in self._uploads():
                if cutoff is not None and (
                    initiated > cutoff or self._last_part_at(name, upload_id, cutoff)
                ):
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload_id
                    )
                except ClientError as exc:
                    if error_code(exc) != "NoSuchUpload":  # its writer just finished
                        raise
                    continue
                aborted += 1
        if aborted:
            log.info("aborted %d stale multipart upload(s) in %s", aborted, self.location.url)
        return aborted

    def _uploads(self) -> Iterator[tuple[str, str, datetime]]:
        prefix = self.location.prefix
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = self.client.list_multipart_uploads(**args)
            for upload in page.get("Uploads", []):
                name = str(upload["Key"])
                if is_valid_key(name[len(prefix) :]):
                    yield name, str(upload["UploadId"]), upload["Initiated"].astimezone(UTC)
            if not page.get("IsTruncated"):
                return
            args["KeyMarker"] = page.get("NextKeyMarker")
            args["UploadIdMarker"] = page.get("NextUploadIdMarker")

    def _last_part_at(self, name: str, upload_id: str, cutoff: datetime) -> bool:
        """Whether a part of the upload was sent after `cutoff` (its writer lives)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": name, "UploadId": upload_id}
        while True:
            page = self.client.list_parts(**args)
            if any(p["LastModified"].astimezone(UTC) > cutoff for p in page.get("Parts", [])):
                return True
            if not page.get("IsTruncated"):
                return False
            args["PartNumberMarker"] = page.get("NextPartNumberMarker")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

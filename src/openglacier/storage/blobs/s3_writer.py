"""The S3 blob store's writer (s3.py has the store and the contract).

Constant memory for a blob of any size: part 1 (header + first body bytes) is
held until commit, parts 2, 3... go out as they fill, at most
`MAX_PARTS_IN_FLIGHT` at a time on the store's thread pool, each from a
preallocated part buffer that is reused once its part is acknowledged.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from openglacier.errors import StorageError
from openglacier.metrics import metered_blob_call
from openglacier.ports import BlobInfo
from openglacier.storage.blobs import BlobWriterClosedError
from openglacier.storage.blobs.codecs.stream import PayloadEncoder
from openglacier.storage.blobs.format import HEADER_LEN
from openglacier.storage.blobs.s3_checksum import CHECKSUM_ALGORITHM, part_checksum
from openglacier.storage.blobs.s3_client import s3_errors

if TYPE_CHECKING:
    from openglacier.storage.blobs.s3 import S3BlobStore

__all__ = ["MAX_PARTS", "MAX_PARTS_IN_FLIGHT", "PART_SIZE", "S3BlobWriter"]

log = logging.getLogger("openglacier.storage.blobs.s3")

PART_SIZE = 8 << 20  # S3's minimum is 5 MiB; 8 MiB parts reach 78 GiB in 10000 parts
# Part 1 is held in memory until commit (it carries the header), so it is only
# as large as S3 requires (parts may differ in size): 3 MiB less per writer
# than a full part, which is peak RSS in a large upload (bench scenario 8).
FIRST_PART_SIZE = 5 << 20
MAX_PARTS = 10_000
MAX_PARTS_IN_FLIGHT = 2

_Sent = tuple[str, str]  # a part's ETag and base64 CRC32C


class S3BlobWriter:
    """One blob being written; see `S3BlobStore` and the module docstring.

    Part buffers are preallocated bytearrays of `part_size`, filled in place
    and handed to UploadPart as they are (botocore signs and sends a bytearray
    without copying it, and without the Expect: 100-continue round trip it adds
    for file-like bodies); a buffer is reused once its part is acknowledged.
    A writer holds at most part 1 plus ``1 + MAX_PARTS_IN_FLIGHT`` buffers.

    Every part and PutObject carries its CRC32C (s3_checksum.py), which the
    store checks before it answers: the transit check, in place of botocore
    hashing each body with SHA-256 for the signature (s3_client.py says why).
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self.key = key
        self._store = store
        self._name = store.object_key(key)
        # Part 1: room for the header (filled in at commit), then body bytes.
        self._first = bytearray(HEADER_LEN)
        self._fill: bytearray | None = None  # the part being filled (parts 2+)
        self._filled = 0
        self._spare: list[bytearray] = []  # acknowledged part buffers, for reuse
        self._sending: deque[tuple[Future[_Sent], bytearray]] = deque()
        self._encoder = PayloadEncoder(store.codecs, key, self._put)
        self._upload_id: str | None = None
        self._parts: list[tuple[int, Future[_Sent]]] = []
        self._open = True
        self._committed = False

    def _check_open(self) -> None:
        if not self._open:
            raise BlobWriterClosedError(f"writer for blob {self.key} is closed")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        try:
            self._encoder.write(memoryview(data).cast("B"))
        except BaseException:
            self._open = False  # only abort() is allowed now
            raise

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        """The next body bytes (payload or frames): into part 1, else into parts."""
        view = memoryview(data).cast("B")
        part = self._store.part_size
        while view:
            if self._upload_id is None:
                room = min(part, FIRST_PART_SIZE) - len(self._first)
                self._first += view[:room]
                view = view[room:]
                if view:
                    self._start_upload()
                continue
            if self._fill is None:
                self._fill, self._filled = self._buffer(), 0
            take = min(part - self._filled, len(view))
            self._fill[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == part:
                self._send_fill()

    def _start_upload(self) -> None:
        with s3_errors(f"writing blob {self.key}"):
            started = self._store.client.create_multipart_upload(
                Bucket=self._store.bucket, Key=self._name, ChecksumAlgorithm=CHECKSUM_ALGORITHM
            )
        self._upload_id = str(started["UploadId"])

    def _buffer(self) -> bytearray:
        """An empty part buffer: a spare one, or a new one while fewer than
        MAX_PARTS_IN_FLIGHT parts are in flight; else wait for the oldest part
        (bounded memory) and reuse its buffer."""
        while self._sending and (
            self._sending[0][0].done() or len(self._sending) >= MAX_PARTS_IN_FLIGHT
        ):
            future, body = self._sending.popleft()
            future.result()  # a failed part fails the write now, not at commit
            self._spare.append(body)
        for future, _ in self._sending:
            if future.done():
                future.result()
        return self._spare.pop() if self._spare else bytearray(self._store.part_size)

    def _send_fill(self) -> None:
        body, self._fill = self._fill, None
        assert body is not None
        number = len(self._parts) + 2  # part 1 is sent at commit
        if number > MAX_PARTS:
            raise StorageError(f"blob {self.key}: larger than {MAX_PARTS} parts")
        if self._filled < len(body):
            del body[self._filled :]  # the last part: shrunk in place, never reused
        future = self._store.submit(self._upload_part, number, body)
        self._parts.append((number, future))
        self._sending.append((future, body))

    def _upload_part(self, number: int, body: bytearray) -> _Sent:
        """The part's ETag and CRC32C (CompleteMultipartUpload names both)."""
        checksum = part_checksum(body)
        with s3_errors(f"writing blob {self.key}"):
            sent = self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                ChecksumCRC32C=checksum,
            )
        return str(sent["ETag"]), checksum

    @metered_blob_call("s3", "put")
    def commit(self) -> BlobInfo:
        self._check_open()
        self._open = False
        try:
            header, index = self._encoder.finish()
            self._first[:HEADER_LEN] = header.pack()
            if self._upload_id is None:
                # One PUT, however far the index takes it past part 1's size.
                self._first += index
                with s3_errors(f"committing blob {self.key}", self.key):
                    self._store.client.put_object(
                        Bucket=self._store.bucket,
                        Key=self._name,
                        Body=self._first,
                        ChecksumCRC32C=part_checksum(self._first),
                        IfNoneMatch="*",
                    )
            else:
                self._put(index)
                self._complete()
        except BaseException:
            self._discard()
            raise
        self._committed = True
        self._release()
        return BlobInfo(self.key, header.payload_length, header.codec, self._encoder.key_id)

    def _complete(self) -> None:
        if self._fill is not None:
            self._send_fill()
        sent = [(1, self._upload_part(1, self._first))]
        sent += [(number, future.result()) for number, future in self._parts]
        parts = [{"PartNumber": n, "ETag": e, "ChecksumCRC32C": c} for n, (e, c) in sent]
        with s3_errors(f"committing blob {self.key}", self.key):
            self._store.client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        self._upload_id = None  # completed: nothing left to abort

    def _release(self) -> None:
        """Drop every buffer (the writer is done)."""
        self._first = bytearray()
        self._fill = None
        self._spare.clear()
        self._sending.clear()

    def abort(self) -> None:
        """Discard everything; idempotent, and a no-op after a successful commit."""
        self._open = False
        if not self._committed:
            self._discard()

    def _discard(self) -> None:
        self._encoder.discard()
        for _, future in self._parts:
            # Parts still in flight would otherwise land after the abort.
            future.cancel() or future.exception()
        self._parts.clear()
        self._release()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._store.client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._name, UploadId=upload_id
            )
        except (ClientError, BotoCoreError) as exc:
            # Left for sweep_temp, like a crashed writer's upload.
            log.warning("aborting the upload of blob %s: %s", self.key, exc)

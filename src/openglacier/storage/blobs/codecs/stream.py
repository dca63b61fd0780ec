"""What both blob stores share around the codecs: payload -> frames -> payload.

Writing: `PayloadEncoder` takes a writer's payload in writes of any size and
hands the blob's body bytes, in file order, to the store's `emit` (the store
decides how they reach the disk or the object store); `finish()` returns the
final header and the index, which the store appends and writes (format.py).

- Codec 0 and 1 pass the caller's bytes through to `emit` untouched (codec 1
  only runs a CRC32C over them), so a write costs what it did before codecs.
- Codecs 2-4 cut the payload into chunks (one chunk buffer, filled from the
  writes; whole chunks inside one immutable `bytes` write are used in place)
  and encode each on a small shared thread pool (`ENCODE_THREADS`; zstd and
  AES-GCM release the GIL), at most `MAX_IN_FLIGHT` chunks ahead of `emit`.
  A full chunk is encoded only once a further byte arrives or at `finish()`:
  only then is it known whether it is the last one, which the encrypted codecs
  bind into its AAD (aead.py). Memory per writer: about 2 + MAX_IN_FLIGHT
  chunks and their frames.

Reading: `load_layout` checks the header and loads the index (the store says
how to read bytes at an offset); `PayloadReader` is the `BlobReader` of every
store: it pulls the frames of the chunks a range touches from a sequential
`FrameSource` (one ``pread`` stream, or one ranged GET), checks and decodes each
chunk before yielding any of its bytes, and yields pieces of at most
`READ_CHUNK` bytes (whole chunks when the chunk size is 1 MiB).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from threading import Lock
from typing import Protocol

from openglacier.errors import IntegrityError
from openglacier.keyring import Keyring
from openglacier.ports import BlobInfo
from openglacier.storage.blobs import ClosingReader
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.frames import Buffer, FrameDecoder, FrameEncoder
from openglacier.storage.blobs.codecs.index import ChunkIndex, crc32c, parse_index
from openglacier.storage.blobs.format import (
    CODEC_CHECKED,
    CODEC_RAW,
    HEADER_LEN,
    BlobHeader,
    check_file_size,
    unpack_header,
)

READ_CHUNK = 1 << 20
ENCODE_THREADS = min(4, os.cpu_count() or 1)
MAX_IN_FLIGHT = 2

_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()


def _encode_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="og-encode")
        return _pool


Emit = Callable[[Buffer], None]
_Encoded = tuple[Buffer, int, int]


class PayloadEncoder:
    """The payload of one blob being written -> its body bytes, in order, to `emit`."""

    def __init__(self, config: CodecConfig, blob_key: str, emit: Emit) -> None:
        self.codec = config.codec
        self.size = 0
        self._emit = emit
        self._cs = config.chunk_size
        self._frames = FrameEncoder(config, blob_key) if self.codec != CODEC_RAW else None
        self._crc = 0  # codec 1: CRC32C state of the chunk being written
        self._chunk = bytearray()  # codecs 2-4: the chunk being filled
        self._chunks = 0  # codecs 2-4: chunks handed to the pool
        self._in_flight: deque[Future[_Encoded]] = deque()

    @property
    def key_id(self) -> str | None:
        return None if self._frames is None else self._frames.key_id

    def write(self, view: memoryview) -> None:
        if self._frames is None:
            self._emit(view)
        elif self.codec == CODEC_CHECKED:
            self._emit(view)
            self._check(view)
        else:
            self._cut(view)
        self.size += len(view)

    def _check(self, view: memoryview) -> None:
        frames, cs, done = self._frames, self._cs, self.size
        assert frames is not None
        whole = view.obj if isinstance(view.obj, bytes) else None
        while view:
            if done % cs == 0:
                self._crc = frames.seed(done // cs)
            piece = view[: cs - done % cs]
            # google_crc32c copies anything but `bytes`: pass a whole bytes write as is.
            data = whole if whole is not None and len(piece) == len(whole) else piece
            self._crc = crc32c(data, self._crc)
            done += len(piece)
            view = view[len(piece) :]
            if done % cs == 0:
                frames.index.add(cs, self._crc, 0)

    def _cut(self, view: memoryview) -> None:
        cs = self._cs
        immutable = isinstance(view.obj, bytes)
        while view:
            if len(self._chunk) == cs:  # more payload follows: it was not the last
                chunk, self._chunk = self._chunk, bytearray()
                self._submit(chunk, last=False)
            if not self._chunk and immutable and len(view) > cs:
                self._submit(view[:cs], last=False)  # in place: bytes never change
                view = view[cs:]
                continue
            take = view[: cs - len(self._chunk)]
            self._chunk += take
            view = view[len(take) :]

    def _submit(self, chunk: Buffer, *, last: bool) -> None:
        frames = self._frames
        assert frames is not None
        number = self._chunks
        self._chunks += 1
        if ENCODE_THREADS > 1:
            self._in_flight.append(_encode_pool().submit(frames.encode, number, chunk, last))
        else:
            done: Future[_Encoded] = Future()
            done.set_result(frames.encode(number, chunk, last))
            self._in_flight.append(done)
        while len(self._in_flight) > MAX_IN_FLIGHT:
            self._drain_one()

    def _drain_one(self) -> None:
        assert self._frames is not None
        frame, check, flags = self._in_flight.popleft().result()
        self._frames.index.add(len(frame), check, flags)
        self._emit(frame)

    def finish(self) -> tuple[BlobHeader, bytes]:
        """Emit what is left; the final header and the index the store appends."""
        frames = self._frames
        if frames is None:
            return BlobHeader(self.size), b""
        if self.codec == CODEC_CHECKED:
            if self.size % self._cs:
                frames.index.add(self.size % self._cs, self._crc, 0)
        else:
            if self._chunk:
                self._submit(self._chunk, last=True)
                self._chunk = bytearray()
            while self._in_flight:
                self._drain_one()
        return frames.header(self.size), frames.index.pack(frames.blob_key)

    def discard(self) -> None:
        """Forget everything (abort): chunks being encoded are left to finish."""
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        self._chunk = bytearray()


class FrameSource(Protocol):
    """The blob's bytes from some file offset on, read in order."""

    def read(self, n: int) -> bytes:
        """Exactly `n` bytes, or IntegrityError if the blob ends first."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BlobLayout:
    """A blob's checked header and (codecs 1+) index."""

    key: str
    header: BlobHeader
    index: ChunkIndex | None

    @property
    def info(self) -> BlobInfo:
        key_id = None if self.index is None else self.index.key_id
        return BlobInfo(self.key, self.header.payload_length, self.header.codec, key_id)

    def file_span(self, start: int, stop: int) -> tuple[int, int]:
        """File bytes [a, b) holding payload [start, stop) (stop > start): the
        payload itself (codec 0), else the frames of every chunk it touches."""
        if self.index is None:
            return HEADER_LEN + start, HEADER_LEN + stop
        cs = self.header.chunk_size
        return self.index.frame_span(start // cs)[0], self.index.frame_span((stop - 1) // cs)[1]


def load_layout(
    key: str, head: bytes, blob_size: int, read_at: Callable[[int, int], bytes]
) -> BlobLayout:
    """Check the header (`head`, the blob's first bytes) and load the index;
    `read_at(offset, end)` returns blob bytes [offset, end)."""
    header = unpack_header(head, key)
    if header.codec == CODEC_RAW:
        check_file_size(header, blob_size, key)
        return BlobLayout(key, header, None)
    if header.codec_field >= blob_size:
        raise IntegrityError(
            f"blob {key}: truncated: {blob_size} bytes, but the chunk index starts at"
            f" {header.codec_field}"
        )
    return BlobLayout(key, header, parse_index(read_at(header.codec_field, blob_size), header, key))


class PayloadReader(ClosingReader[FrameSource]):
    """Payload bytes [start, stop) of one blob, checked chunk by chunk (codecs 1+).

    `source` starts at `layout.file_span(start, stop)[0]`; None for an empty
    range. Raises MissingKeyError at once if the blob's key is not in `keyring`.
    """

    def __init__(
        self,
        layout: BlobLayout,
        keyring: Keyring | None,
        start: int,
        stop: int,
        source: FrameSource | None,
    ) -> None:
        self._layout, self._pos, self._stop = layout, start, stop
        self._decoder = None
        if layout.index is not None:
            self._decoder = FrameDecoder(layout.header, layout.index, layout.key, keyring)
        self.checked = self._decoder is not None
        self._chunk = b""  # the decoded chunk holding self._pos (codecs 1+)
        self._chunk_start = 0
        self._held = source  # last: a failed __init__ leaves the caller to close it

    def __next__(self) -> bytes:
        if self._pos >= self._stop:
            self.close()
            raise StopIteration
        source = self._held
        if source is None:
            raise ValueError(f"reader of blob {self._layout.key} is closed")
        try:
            piece = self._next_piece(source)
        except BaseException:
            self.close()
            raise
        self._pos += len(piece)
        return piece

    def _next_piece(self, source: FrameSource) -> bytes:
        pos, limit = self._pos, self._stop
        if self._decoder is None:
            return source.read(min(READ_CHUNK - pos % READ_CHUNK, limit - pos))
        cs = self._layout.header.chunk_size
        if not self._chunk_start <= pos < self._chunk_start + len(self._chunk):
            number = pos // cs
            frame = self._layout.index.frame_span(number)  # type: ignore[union-attr]
            self._chunk = self._decoder.decode(number, source.read(frame[1] - frame[0]))
            self._chunk_start = number * cs
        at = pos - self._chunk_start
        end = min(len(self._chunk), limit - self._chunk_start, at + READ_CHUNK - pos % READ_CHUNK)
        return self._chunk if (at, end) == (0, len(self._chunk)) else self._chunk[at:end]

    def _release(self) -> None:
        self._chunk = b""

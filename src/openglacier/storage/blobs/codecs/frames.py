"""One chunk <-> one frame, for codecs 1-4 (format.py, index.py, aead.py).

`FrameEncoder` encodes the chunks of one blob being written and builds its
index; `FrameDecoder` checks and decodes the frames of one blob being read.
Both work on whole chunks; stream.py cuts payloads into chunks for them.
`FrameEncoder.encode` may run on several threads at once (one blob's chunks
are encoded in parallel, see stream.py); everything else is single-threaded.
"""

from __future__ import annotations

import threading

import zstandard

from openglacier.errors import IntegrityError
from openglacier.keyring import Keyring
from openglacier.storage.blobs.codecs import CodecConfig
from openglacier.storage.blobs.codecs.aead import ChunkCipher, master_key, new_salt
from openglacier.storage.blobs.codecs.index import (
    FLAG_RAW,
    ChunkIndex,
    IndexBuilder,
    chunk_seed,
    crc32c,
)
from openglacier.storage.blobs.format import (
    COMPRESSED_CODECS,
    ENCRYPTED_CODECS,
    HEADER_LEN,
    BlobHeader,
)

Buffer = bytes | bytearray | memoryview

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """One compressor per thread and level: they are not thread-safe, and
    making one per chunk would cost more than small chunks take to compress."""
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("zstd", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


class FrameEncoder:
    """Frames and index of one blob being written with `config`."""

    def __init__(self, config: CodecConfig, blob_key: str) -> None:
        self.codec = config.codec
        self.chunk_size = config.chunk_size
        self.blob_key = blob_key
        self._level = config.compression_level
        self._key_seed = crc32c(blob_key.encode("ascii"))
        self._cipher: ChunkCipher | None = None
        invariant = BlobHeader(0, self.codec, chunk_size=self.chunk_size).invariant
        if self.codec in ENCRYPTED_CODECS:
            assert config.keyring is not None
            key_id, salt = config.keyring.current, new_salt()
            self.index = IndexBuilder(self.codec, salt, key_id)
            master = config.keyring.key(key_id)
            self._cipher = ChunkCipher(master, salt, blob_key, key_id, invariant)
        else:
            self.index = IndexBuilder(self.codec)

    @property
    def key_id(self) -> str | None:
        return self.index.key_id

    def seed(self, number: int) -> int:
        """Where chunk `number`'s CRC32C starts (index.py: blob key, chunk number)."""
        return chunk_seed(self._key_seed, number)

    def check(self, number: int, chunk: Buffer) -> int:
        """The index entry's checksum of a chunk (codecs 1, 2)."""
        return crc32c(chunk, self.seed(number))

    def encode(self, number: int, chunk: Buffer, last: bool) -> tuple[Buffer, int, int]:
        """(frame, check, flags) of payload chunk `number`; thread-safe."""
        flags = 0
        frame: Buffer = chunk
        if self.codec in COMPRESSED_CODECS:
            assert self._level is not None
            packed = _compressor(self._level).compress(chunk)
            if len(packed) < len(chunk):
                frame = packed
            else:
                flags = FLAG_RAW
        if self._cipher is not None:
            return self._cipher.seal(number, frame, last, bool(flags)), 0, flags
        return frame, self.check(number, chunk), flags

    def header(self, payload_length: int) -> BlobHeader:
        """The final header, once every frame went through `index.add`."""
        offset = HEADER_LEN + self.index.frame_bytes
        return BlobHeader(payload_length, self.codec, 0, self.chunk_size, offset)


class FrameDecoder:
    """Checks and decodes the frames of one blob; MissingKeyError at once if
    the blob is encrypted under a key `keyring` does not hold."""

    def __init__(
        self, header: BlobHeader, index: ChunkIndex, blob_key: str, keyring: Keyring | None
    ) -> None:
        self.header, self.index, self.blob_key = header, index, blob_key
        self._key_seed = crc32c(blob_key.encode("ascii"))
        self._cipher: ChunkCipher | None = None
        if index.key_id is not None:
            master = master_key(keyring, index.key_id)
            self._cipher = ChunkCipher(master, index.salt, blob_key, index.key_id, header.invariant)
        self._zstd = zstandard.ZstdDecompressor()

    def chunk_length(self, number: int) -> int:
        header = self.header
        return min(header.chunk_size, header.payload_length - number * header.chunk_size)

    def _damaged(self, number: int, what: str) -> IntegrityError:
        return IntegrityError(f"blob {self.blob_key}: leaf {number} (chunk {number}) {what}")

    def decode(self, number: int, frame: bytes) -> bytes:
        """Payload chunk `number` from its frame, or IntegrityError: nothing
        unchecked comes out."""
        size = self.chunk_length(number)
        if not self.index.entry_fits(number, size):
            raise IntegrityError(
                f"blob {self.blob_key}: chunk index entry {number} does not fit a chunk of"
                f" {size} bytes"
            )
        _, expected, flags = self.index.entry(number)
        raw = bool(flags & FLAG_RAW)
        data = frame
        if self._cipher is not None:
            last = number == self.index.count - 1
            data = self._cipher.open(number, frame, last, raw)
        if self.header.codec in COMPRESSED_CODECS and not raw:
            data = self._decompress(number, data, size)
        if len(data) != size:
            raise self._damaged(number, f"decodes to {len(data)} bytes, not {size}")
        if self._cipher is None:
            check = crc32c(data, chunk_seed(self._key_seed, number))
            if check != expected:
                raise self._damaged(number, "fails its CRC32C check (damaged)")
        return data

    def _decompress(self, number: int, data: bytes, size: int) -> bytes:
        try:
            # The frame's own content size must be the chunk's before zstd
            # allocates anything: a damaged size field must not cost gigabytes.
            if zstandard.frame_content_size(data) != size:
                raise zstandard.ZstdError("content size mismatch")
            return self._zstd.decompress(data, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise self._damaged(number, f"does not decompress ({exc})") from None

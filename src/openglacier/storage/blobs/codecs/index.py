"""The chunk index of codecs 1+ (format.py): where each frame is and what checks it.

The index follows the last frame; the header's codec field (offset 24) holds
its file offset, and the blob ends exactly where the index ends. Little-endian:

=========  ======  ===========================================================
offset     type    field
=========  ======  ===========================================================
0          4s      magic ``b"OGIX"``
4          u8      codec id (must equal the header's)
5          u8      L, the key id's length: 1-64 for codecs 3 and 4, else 0
6          u16     reserved, 0
8          u64     N, the chunk count: ``ceil(payload_length / chunk_size)``
16         16s     salt of the blob's data key (codecs 3, 4; zeros otherwise)
32         L       key id (ASCII, keyring.py) of the master key (codecs 3, 4)
32+L       12*N    one entry per chunk, in chunk order (below)
32+L+12N   u32     CRC32C of the blob key (ASCII) followed by index bytes 0 to here
=========  ======  ===========================================================

Entry ``i`` (12 bytes):

======  ====  ================================================================
offset  type  field
======  ====  ================================================================
0       u32   length of frame ``i`` in bytes; frame 0 starts at file offset 32,
              frame ``i + 1`` where frame ``i`` ends
4       u32   codecs 1, 2: CRC32C of (blob key ASCII, u64 ``i``, chunk ``i``'s
              payload bytes), so a chunk read from the wrong place or the wrong
              blob fails it too; codecs 3, 4: 0 (the GCM tag checks the chunk,
              and an unkeyed checksum of plaintext would let anyone holding the
              blob confirm a guess of a chunk's contents)
8       u8    flags: bit 0 = "stored raw" (codecs 2, 4: zstd did not shrink the
              chunk, the frame holds it uncompressed); other bits 0
9       3x    reserved, 0
======  ====  ================================================================

The CRC of the index is seeded with the blob key for the same reason: a blob
stored or served under another key fails at open. 12 bytes per MiB of payload
keep the index small (48 KiB for a 4 GiB blob), so readers load it whole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import accumulate

import google_crc32c

from openglacier.errors import IntegrityError
from openglacier.storage.blobs.format import (
    CODEC_AES,
    CODEC_CHECKED,
    COMPRESSED_CODECS,
    ENCRYPTED_CODECS,
    HEADER_LEN,
    BlobHeader,
)

INDEX_MAGIC = b"OGIX"
SALT_LEN = 16
AES_TAG_LEN = 16
MAX_KEY_ID_LEN = 64
FLAG_RAW = 0x01

_PREAMBLE = struct.Struct("<4sBBHQ16s")
_ENTRY = struct.Struct("<IIB3x")
_CRC = struct.Struct("<I")
PREAMBLE_LEN = _PREAMBLE.size  # 32, before the key id
ENTRY_LEN = _ENTRY.size

assert (PREAMBLE_LEN, ENTRY_LEN) == (32, 12)  # the documented layout depends on it


def crc32c(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """CRC32C; google_crc32c only takes `bytes`, so other buffers are copied."""
    if not isinstance(data, bytes):
        data = bytes(data)
    return int(google_crc32c.extend(seed, data))


def chunk_seed(key_seed: int, number: int) -> int:
    """The CRC32C state after (blob key, u64 chunk number): a chunk's check starts here."""
    return crc32c(number.to_bytes(8, "little"), key_seed)


def index_length(chunks: int, key_id: str | None) -> int:
    return PREAMBLE_LEN + len(key_id or "") + ENTRY_LEN * chunks + _CRC.size


@dataclass(frozen=True, slots=True)
class ChunkIndex:
    """A parsed, checked index; `ends[i]` is frame i's end as a file offset."""

    codec: int
    salt: bytes
    key_id: str | None
    ends: tuple[int, ...]
    checks: tuple[int, ...]
    flags: tuple[int, ...]

    def frame_span(self, number: int) -> tuple[int, int]:
        start = self.ends[number - 1] if number else HEADER_LEN
        return start, self.ends[number]


class IndexBuilder:
    """Collects entries while frames are written; `pack` renders the index."""

    def __init__(self, codec: int, salt: bytes = bytes(SALT_LEN), key_id: str | None = None):
        self.codec, self.salt, self.key_id = codec, salt, key_id
        self._entries = bytearray()
        self.chunks = 0
        self.frame_bytes = 0

    def add(self, frame_length: int, check: int, flags: int) -> None:
        self._entries += _ENTRY.pack(frame_length, check, flags)
        self.chunks += 1
        self.frame_bytes += frame_length

    def pack(self, blob_key: str) -> bytes:
        key_id = (self.key_id or "").encode("ascii")
        body = (
            _PREAMBLE.pack(INDEX_MAGIC, self.codec, len(key_id), 0, self.chunks, self.salt)
            + key_id
            + self._entries
        )
        return body + _CRC.pack(crc32c(body, crc32c(blob_key.encode("ascii"))))


def parse_index(raw: bytes, header: BlobHeader, blob_key: str) -> ChunkIndex:
    """Check and parse the index bytes (from the header's offset to the end of
    the blob). Anything inconsistent is an IntegrityError naming the blob."""

    def bad(what: str) -> IntegrityError:
        return IntegrityError(f"blob {blob_key}: chunk index {what}")

    if len(raw) < PREAMBLE_LEN + _CRC.size:
        raise bad(f"truncated ({len(raw)} bytes)")
    magic, codec, id_len, reserved, chunks, salt = _PREAMBLE.unpack_from(raw)
    if magic != INDEX_MAGIC:
        raise bad(f"has bad magic {magic!r}")
    if len(raw) != index_length(chunks, "x" * id_len):
        size = header.codec_field + len(raw)
        raise bad(f"does not fit the blob's {size} bytes (truncated or trailing garbage)")
    body = memoryview(raw)[: -_CRC.size]
    if crc32c(body, crc32c(blob_key.encode("ascii"))) != _CRC.unpack_from(raw, len(body))[0]:
        raise bad("checksum mismatch (damaged, or the blob of another key)")
    if codec != header.codec or reserved or chunks != header.chunk_count:
        raise bad(f"does not match the header (codec {codec}, {chunks} chunks)")
    encrypted = codec in ENCRYPTED_CODECS
    if encrypted != (id_len > 0) or (not encrypted and salt != bytes(SALT_LEN)):
        raise bad(f"key id or salt do not fit codec {codec}")
    try:
        key_id = raw[PREAMBLE_LEN : PREAMBLE_LEN + id_len].decode("ascii") if encrypted else None
    except UnicodeDecodeError:
        raise bad("has a key id that is not ASCII") from None
    entries = list(_ENTRY.iter_unpack(body[PREAMBLE_LEN + id_len :]))
    ends = tuple(accumulate((e[0] for e in entries), initial=HEADER_LEN))[1:]
    if (ends[-1] if ends else HEADER_LEN) != header.codec_field:
        raise bad("frame lengths do not add up to the index offset")
    for number, (length, check, flag) in enumerate(entries):
        size = min(header.chunk_size, header.payload_length - number * header.chunk_size)
        if not _entry_fits(codec, size, length, check, flag):
            raise bad(f"entry {number} does not fit a chunk of {size} bytes")
    checks = tuple(e[1] for e in entries)
    return ChunkIndex(codec, salt, key_id, ends, checks, tuple(e[2] for e in entries))


def _entry_fits(codec: int, size: int, length: int, check: int, flag: int) -> bool:
    """A frame holding `size` payload bytes, as codec `codec` writes it."""
    if flag & ~FLAG_RAW or (flag and codec not in COMPRESSED_CODECS):
        return False
    tag = AES_TAG_LEN if codec in ENCRYPTED_CODECS else 0
    if tag and check:
        return False
    if codec in (CODEC_CHECKED, CODEC_AES) or flag & FLAG_RAW:
        return length == size + tag
    return tag < length < size + tag  # compressed frames are kept only if smaller

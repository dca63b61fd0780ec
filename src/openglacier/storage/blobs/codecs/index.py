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
import sys
from array import array

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


class ChunkIndex:
    """A parsed, checked index. Entries are read where they lie (`entry`), and
    frame offsets computed on demand: readers parse the index at every open,
    and a 4 GiB blob has 4096 entries, so nothing here walks them all in Python.
    """

    def __init__(
        self, header: BlobHeader, salt: bytes, key_id: str | None, entries: bytes, count: int
    ) -> None:
        self.codec, self.salt, self.key_id, self.count = header.codec, salt, key_id, count
        self.entries = entries
        self._chunk_size = header.chunk_size
        self._tag = AES_TAG_LEN if self.codec in ENCRYPTED_CODECS else 0
        self._fixed = self.codec in (CODEC_CHECKED, CODEC_AES)  # every frame chunk + tag
        self._cursor = (0, HEADER_LEN)  # (chunk, its frame's offset): reads go forward

    def entry(self, number: int) -> tuple[int, int, int]:
        """(frame length, check, flags) of chunk `number`."""
        length, check, flags = _ENTRY.unpack_from(self.entries, ENTRY_LEN * number)
        return length, check, flags

    def frame_span(self, number: int) -> tuple[int, int]:
        """File bytes [start, end) of frame `number`."""
        if self._fixed:
            start = HEADER_LEN + number * (self._chunk_size + self._tag)
        else:
            at, start = self._cursor
            if number < at:
                at, start = 0, HEADER_LEN
            lengths = _words(memoryview(self.entries)[ENTRY_LEN * at : ENTRY_LEN * number])
            start += sum(lengths[0::3])
        end = start + self.entry(number)[0]
        self._cursor = (number + 1, end)
        return start, end

    def entry_fits(self, number: int, size: int) -> bool:
        """Whether entry `number` describes a frame holding `size` payload bytes
        as this codec writes it. `parse_index` checks what it can for all
        entries at once; this per-entry rest runs before a chunk is decoded."""
        length, check, flags = self.entry(number)
        codec, tag = self.codec, self._tag
        if flags & ~FLAG_RAW or (flags and codec not in COMPRESSED_CODECS) or (tag and check):
            return False
        if self._fixed or flags & FLAG_RAW:
            return length == size + tag
        return tag < length < size + tag  # compressed frames are kept only if smaller


class IndexBuilder:
    """Collects entries while frames are written; `pack` renders the index."""

    def __init__(self, codec: int, salt: bytes = bytes(SALT_LEN), key_id: str | None = None):
        self.codec, self.salt, self.key_id = codec, salt, key_id
        self.entries = bytearray()
        self.chunks = 0
        self.frame_bytes = 0

    def add(self, frame_length: int, check: int, flags: int) -> None:
        self.entries += _ENTRY.pack(frame_length, check, flags)
        self.chunks += 1
        self.frame_bytes += frame_length

    def pack(self, blob_key: str) -> bytes:
        key_id = (self.key_id or "").encode("ascii")
        body = (
            _PREAMBLE.pack(INDEX_MAGIC, self.codec, len(key_id), 0, self.chunks, self.salt)
            + key_id
            + self.entries
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
    if encrypted != (id_len > 0) or id_len > MAX_KEY_ID_LEN:
        raise bad(f"key id length {id_len} does not fit codec {codec}")
    if not encrypted and salt != bytes(SALT_LEN):
        raise bad(f"key id or salt do not fit codec {codec}")
    try:
        key_id = raw[PREAMBLE_LEN : PREAMBLE_LEN + id_len].decode("ascii") if encrypted else None
    except UnicodeDecodeError:
        raise bad("has a key id that is not ASCII") from None
    entries = bytes(body[PREAMBLE_LEN + id_len :])
    index = ChunkIndex(header, salt, key_id, entries, chunks)
    if not chunks and header.codec_field != HEADER_LEN:
        raise bad("frame lengths do not add up to the index offset")
    if chunks and not _entries_fit(header, index):
        raise bad("has entries that do not fit their chunks or the index offset")
    return index


def _words(entries: memoryview) -> array[int]:
    """The entries as u32 words (length, check, flags): in C, not per entry,
    as readers parse the index at every open (48 KiB for a 4 GiB blob)."""
    words = array("I")
    words.frombytes(entries)
    if sys.byteorder != "little":
        words.byteswap()
    return words


def _entries_fit(header: BlobHeader, index: ChunkIndex) -> bool:
    """Every entry at once, in C: the frames fill exactly the space up to the
    index, the non-last frames of a fixed-size codec are chunk-sized, the
    others in bounds, only known flags, no checksums in encrypted blobs. The
    last entry is checked in full; the others' flag-length agreement when
    their chunk is read (`ChunkIndex.entry_fits`)."""
    codec, cs, count = header.codec, header.chunk_size, index.count
    last = header.payload_length - (count - 1) * cs
    if not index.entry_fits(count - 1, last):
        return False
    tag = AES_TAG_LEN if codec in ENCRYPTED_CODECS else 0
    entries = index.entries
    if codec in (CODEC_CHECKED, CODEC_AES):
        if header.codec_field != HEADER_LEN + (count - 1) * (cs + tag) + last + tag:
            return False
        # Each non-last entry: u32 cs + tag, then (codec 3) a zero check, zero flags.
        pattern = _ENTRY.pack(cs + tag, 0, 0)
        lanes = range(ENTRY_LEN) if tag else (*range(4), *range(8, ENTRY_LEN))
        full = entries[: ENTRY_LEN * (count - 1)]
        return all(full[k::ENTRY_LEN].count(pattern[k]) == count - 1 for k in lanes)
    words = _words(memoryview(entries))
    lengths, flags = words[0::3], words[2::3]
    if sum(lengths) != header.codec_field - HEADER_LEN or max(flags) > FLAG_RAW:
        return False
    if tag and max(words[1::3]):
        return False
    body = lengths[:-1]
    return not body or (tag < min(body) and max(body) <= cs + tag)

"""On-disk blob format, version 1 (design 4 "BlobStore": header with version and codec).

Every blob (a file, or an S3 object with the same bytes) is a fixed 32-byte
header followed by the codec's body. All integers are little-endian.

======  =====  ==============================================================
offset  type   field
======  =====  ==============================================================
0       4s     magic ``b"OGLB"``
4       u8     format version, 1
5       u8     codec id (below)
6       u16    flags; version 1 defines none, readers reject any set bit
8       u32    chunk size in payload bytes (1 MiB: one tree-hash leaf, spec 3.1)
12      u32    CRC-32 (zlib) of the 32 header bytes with this field set to zero
16      u64    payload length in bytes (written last, at commit)
24      u64    codec field: 0 for codec 0; codecs 1+: file offset of the chunk index
======  =====  ==============================================================

The payload length and the index offset are only known at the end, so the
writer first writes a placeholder header and rewrites it (``pwrite``; on S3,
part 1 is held back) before the blob is made durable and visible. The CRC
makes a bit flip anywhere in the header an `IntegrityError` instead of a
misread length.

Codec ids:

== ================ ============================================================
id name             frame i (payload chunk i, ``chunk_size`` bytes, the last shorter)
== ================ ============================================================
0  raw (legacy)     no frames: the payload verbatim, no index; only the archive's
                    tree hash covers it (``BlobReader.checked`` is False)
1  checked raw      the chunk verbatim; index holds its CRC32C (the default)
2  zstd             a zstd frame of the chunk, or the chunk verbatim when zstd does
                    not shrink it (per-chunk "stored raw" flag); CRC32C in the index
3  AES-256-GCM      ciphertext of the chunk, then its 16-byte tag
4  zstd + AES-GCM   ciphertext of codec 2's frame (raw flag bound in the AAD), tag
== ================ ============================================================

Codec 0 stores the payload right after the header, so payload byte ``i`` is
file byte ``32 + i`` and the file is exactly ``32 + payload_length`` bytes
(`check_file_size`). Codec 1 keeps that property for the payload (frames are
the chunks, back to back from offset 32), so a ranged read is still one seek,
and appends the chunk index. Codecs 1+ are laid out as::

    header (32) | frame 0 | frame 1 | ... | frame N-1 | chunk index

with ``N = ceil(payload_length / chunk_size)`` and the codec field at offset
24 giving the index's file offset (``32 + total frame bytes``). The index
(storage/blobs/codecs/index.py documents it byte by byte) has a preamble
(codec, chunk count, key id and salt of encrypted blobs), one entry per chunk
(frame length, CRC32C, flags) and a CRC32C of itself; the file ends exactly
where the index ends. A read of payload bytes ``[start, end)`` decodes only
chunks ``start // chunk_size`` through ``(end - 1) // chunk_size``, each checked
against its CRC or GCM tag before any of its bytes are returned. The crypto
construction (per-blob HKDF key, chunk-number nonces, AAD binding the header,
blob key, chunk number, last-chunk flag and key id) is in codecs/aead.py.

A version-1 reader that predates a codec rejects it by its id (`IntegrityError`,
"unsupported codec") rather than misreading it, and codec-0 files mean the
same to every version-1 reader, so adding codecs needed no version bump.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from openglacier.errors import IntegrityError

MAGIC = b"OGLB"
VERSION = 1
CODEC_RAW = 0
CODEC_CHECKED = 1
CODEC_ZSTD = 2
CODEC_AES = 3
CODEC_ZSTD_AES = 4
SUPPORTED_CODECS = frozenset({CODEC_RAW, CODEC_CHECKED, CODEC_ZSTD, CODEC_AES, CODEC_ZSTD_AES})
ENCRYPTED_CODECS = frozenset({CODEC_AES, CODEC_ZSTD_AES})
COMPRESSED_CODECS = frozenset({CODEC_ZSTD, CODEC_ZSTD_AES})
DEFAULT_CHUNK_SIZE = 1 << 20

_STRUCT = struct.Struct("<4sBBHIIQQ")
HEADER_LEN = _STRUCT.size
_CRC_SLICE = slice(12, 16)
# The fields fixed at create() (magic, version, codec, flags, chunk size):
# what the encrypted codecs bind into every chunk's AAD.
INVARIANT_LEN = 12

assert HEADER_LEN == 32  # the documented layout depends on it


@dataclass(frozen=True, slots=True)
class BlobHeader:
    payload_length: int
    codec: int = CODEC_RAW
    flags: int = 0
    chunk_size: int = DEFAULT_CHUNK_SIZE
    codec_field: int = 0

    def pack(self) -> bytes:
        raw = bytearray(
            _STRUCT.pack(
                MAGIC,
                VERSION,
                self.codec,
                self.flags,
                self.chunk_size,
                0,
                self.payload_length,
                self.codec_field,
            )
        )
        raw[_CRC_SLICE] = struct.pack("<I", zlib.crc32(raw))
        return bytes(raw)

    @property
    def invariant(self) -> bytes:
        """Header bytes 0-11, the fields that never change after create()."""
        return self.pack()[:INVARIANT_LEN]

    @property
    def chunk_count(self) -> int:
        return -(-self.payload_length // self.chunk_size)

    @property
    def file_size(self) -> int:
        """Expected file length; codec 0 only (codecs 1+ add their frames and index)."""
        return HEADER_LEN + self.payload_length


def unpack_header(raw: bytes, where: str) -> BlobHeader:
    """Parse and check a header; `where` names the blob in error messages."""
    if len(raw) < HEADER_LEN:
        raise IntegrityError(f"blob {where}: truncated header ({len(raw)} bytes)")
    magic, version, codec, flags, chunk_size, crc, length, codec_field = _STRUCT.unpack_from(raw)
    if magic != MAGIC:
        raise IntegrityError(f"blob {where}: bad magic {magic!r}")
    zeroed = bytearray(raw[:HEADER_LEN])
    zeroed[_CRC_SLICE] = bytes(4)
    if zlib.crc32(zeroed) != crc:
        raise IntegrityError(f"blob {where}: header checksum mismatch")
    if version != VERSION:
        raise IntegrityError(f"blob {where}: unsupported format version {version}")
    if codec not in SUPPORTED_CODECS:
        raise IntegrityError(f"blob {where}: unsupported codec {codec}")
    if flags:
        raise IntegrityError(f"blob {where}: unsupported flags {flags:#06x}")
    if chunk_size <= 0:
        raise IntegrityError(f"blob {where}: invalid chunk size {chunk_size}")
    if codec == CODEC_RAW and codec_field:
        raise IntegrityError(f"blob {where}: codec 0 with a codec field ({codec_field})")
    if codec != CODEC_RAW and codec_field < HEADER_LEN:
        raise IntegrityError(f"blob {where}: codec {codec} with no chunk index offset")
    return BlobHeader(length, codec, flags, chunk_size, codec_field)


def check_file_size(header: BlobHeader, file_size: int, where: str) -> None:
    """Codec 0: the file is exactly header + payload."""
    if file_size != header.file_size:
        raise IntegrityError(
            f"blob {where}: file is {file_size} bytes, header says {header.file_size}"
            " (truncated or trailing garbage)"
        )
